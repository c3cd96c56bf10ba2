/** No frame for this long, with this thread free, is the client pausing, not us lagging. */
const PAUSE_MS = 1000;

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
  private lastArrivalAt = -Infinity;

  constructor(
    private readonly report: (lagMs: number[]) => void,
    /**
     * Whether this thread has been free to read messages for the last `ms` (a heartbeat). A client
     * that paused its stream (push-to-talk released, microphone off) leaves a gap in arrivals while
     * the thread was free: its next frame starts a new stream rather than counting the pause as lag.
     */
    private readonly wasIdle: (ms: number) => boolean,
    private readonly everyMs = 1000,
  ) {}

  /** A frame ending at `streamEndMs` of the audio arrived at `at`. */
  arrived(streamEndMs: number, at: number): void {
    const gap = at - this.lastArrivalAt;
    this.lastArrivalAt = at;
    if (gap > PAUSE_MS && this.wasIdle(gap)) this.anchor = at - streamEndMs;
    else this.anchor = Math.min(this.anchor, at - streamEndMs);
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

/** Ticks every 100 ms; tells whether this thread ran its timers on time over a past stretch. */
export class Heartbeat {
  private readonly beats: number[] = [];
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly now: () => number = () => performance.now()) {
    this.timer = setInterval(() => {
      this.beats.push(this.now());
      if (this.beats.length > 100) this.beats.shift();
    }, 100);
    this.timer.unref();
  }

  /** No gap between beats over the last `ms` was longer than 300 ms. */
  idleFor(ms: number): boolean {
    const to = this.now();
    const from = to - Math.min(ms, 9000); // the beats kept reach back 10 s
    let prev = from;
    for (const b of this.beats) {
      if (b < from) continue;
      if (b - prev > 300) return false;
      prev = b;
    }
    return to - prev <= 300;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
