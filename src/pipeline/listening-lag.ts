/**
 * How far listening runs behind the microphone, frame by frame. A client sends frames as they are
 * captured, so frame k's end was spoken at (anchor + its stream time), where the anchor is the
 * earliest any frame could have been captured: the minimum of (arrival − stream time) over the
 * frames so far. A frame's lag is when the VAD was done with it minus that moment: it counts the
 * frame waiting to be read (a busy event loop) as well as waiting for the VAD.
 */
export class ListeningLag {
  private anchor = Infinity;
  private pending: number[] = [];
  private lastReportAt = -Infinity;

  constructor(
    private readonly report: (lagMs: number[]) => void,
    private readonly everyMs = 1000,
  ) {}

  /** A frame ending at `streamEndMs` of the audio arrived at `at`. */
  arrived(streamEndMs: number, at: number): void {
    this.anchor = Math.min(this.anchor, at - streamEndMs);
  }

  /** The VAD is done with the frame ending at `streamEndMs`, at `at`; reports the batch once a second. */
  processed(streamEndMs: number, at: number): void {
    if (!Number.isFinite(this.anchor)) return;
    this.pending.push(Math.max(0, Math.round(at - (this.anchor + streamEndMs))));
    if (at - this.lastReportAt >= this.everyMs) this.flush(at);
  }

  flush(at: number): void {
    this.lastReportAt = at;
    if (!this.pending.length) return;
    const batch = this.pending;
    this.pending = [];
    this.report(batch);
  }
}
