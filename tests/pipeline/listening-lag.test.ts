import { describe, expect, it } from 'vitest';
import { ListeningLag } from '../../src/pipeline/listening-lag.ts';

/** Frames of 20 ms sent in real time from `t0`, each processed `doneAfter(k)` ms after it arrived. */
function stream(lag: ListeningLag, o: { t0: number; streamMs0: number; frames: number; arriveDelay?: (k: number) => number; doneAfter?: (k: number) => number }) {
  for (let k = 0; k < o.frames; k++) {
    const end = o.streamMs0 + (k + 1) * 20;
    const arrived = o.t0 + (k + 1) * 20 + (o.arriveDelay?.(k) ?? 1);
    lag.arrived(end, arrived);
    lag.processed(end, arrived + (o.doneAfter?.(k) ?? 2));
  }
}

describe('listening lag', () => {
  it('is the time from when a frame was spoken to when the VAD was done with it', () => {
    const got: number[] = [];
    const lag = new ListeningLag((l) => got.push(...l), () => true, 0);
    stream(lag, { t0: 0, streamMs0: 0, frames: 50, doneAfter: (k) => (k >= 40 ? 300 : 2) });
    expect(got.slice(0, 40).every((x) => x <= 3)).toBe(true);
    expect(got.slice(40).every((x) => x >= 299 && x <= 302)).toBe(true);
  });

  it('frames held up before they are read (a blocked thread, then a burst) count as lag', () => {
    const got: number[] = [];
    const lag = new ListeningLag((l) => got.push(...l), () => false, 0);
    stream(lag, { t0: 0, streamMs0: 0, frames: 50 });
    // 1.5 s with the thread blocked: 75 frames arrive at once when it frees up.
    stream(lag, { t0: 1000, streamMs0: 1000, frames: 75, arriveDelay: (k) => 1500 - (k + 1) * 20 });
    expect(Math.max(...got)).toBeGreaterThanOrEqual(1400);
  });

  it("a client's pause while this thread was free starts a new stream, not lag", () => {
    const got: number[] = [];
    const lag = new ListeningLag((l) => got.push(...l), () => true, 0);
    stream(lag, { t0: 0, streamMs0: 0, frames: 50 });
    // Push-to-talk released for 5 s, then pressed again: the stream goes on from where it stopped.
    stream(lag, { t0: 6000, streamMs0: 1000, frames: 50 });
    expect(Math.max(...got)).toBeLessThanOrEqual(3);
  });
});
