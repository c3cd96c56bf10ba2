import { describe, expect, it } from 'vitest';
import { AudioIntake } from '../../src/pipeline/audio-intake.ts';

describe('AudioIntake: a client may run a little ahead of real time, never far', () => {
  it('a microphone sending 100 ms frames in real time loses nothing over ten minutes', () => {
    const a = new AudioIntake();
    for (let t = 0; t < 600_000; t += 100) {
      expect(a.offer(100, t).take).toBe(true);
      a.done(100);
    }
    expect(a.dropped).toBe(0);
  });

  it('a burst of the allowance after a stall is taken; beyond it frames are dropped, with one notice', () => {
    const a = new AudioIntake({ burstMs: 3000, rate: 1.25 });
    const verdicts = Array.from({ length: 10 }, () => a.offer(1000, 0));
    for (let i = 0; i < 10; i++) a.done(verdicts[i].take ? 1000 : 0);
    expect(verdicts.filter((v) => v.take)).toHaveLength(3);
    const notices = verdicts.flatMap((v) => (!v.take && v.notice ? [v.notice] : []));
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(/faster than real time: 1\.0 s of audio dropped/);
    expect(a.dropped).toBe(7000);
  });

  it('a flood at 100x real time for 20 s gets about 1.25x real time in, plus the burst', () => {
    const a = new AudioIntake({ burstMs: 3000, rate: 1.25, noticeEveryMs: 10_000 });
    let taken = 0;
    let notices = 0;
    for (let t = 0; t < 20_000; t += 10) {
      const v = a.offer(1000, t);
      if (v.take) {
        taken += 1000;
        a.done(1000);
      } else if (v.notice) notices++;
    }
    expect(taken).toBeGreaterThanOrEqual(25_000);
    expect(taken).toBeLessThanOrEqual(3000 + 1.25 * 20_000);
    expect(notices).toBe(2); // at 0 s and 10 s: told, not spammed
  });

  it('audio waiting to be processed is capped even when it arrives in real time', () => {
    const a = new AudioIntake({ backlogMs: 5000 });
    let t = 0;
    const taken: boolean[] = [];
    for (let i = 0; i < 10; i++, t += 1000) taken.push(a.offer(1000, t).take); // nothing processed
    expect(taken.filter(Boolean)).toHaveLength(5);
    expect(a.waiting).toBe(5000);
    a.done(1000);
    const v = a.offer(1000, t);
    expect(v.take).toBe(true);
  });
});
