import { afterEach, describe, expect, it, vi } from 'vitest';
import { BargeInPolicy, isBackchannel } from '../../src/pipeline/barge-in.ts';

describe('barge-in policy', () => {
  afterEach(() => vi.useRealTimers());
  const policy = (busy = { now: false }) => {
    const calls = { interrupt: 0, graceOver: 0 };
    const p = new BargeInPolicy({ confirmMs: 350, graceMs: 2000, userBusy: () => busy.now, onInterrupt: () => calls.interrupt++, onGraceOver: () => calls.graceOver++ });
    return { p, calls, busy };
  };

  it('knows a backchannel from an interruption', () => {
    for (const t of ['uh huh', 'Mhm.', 'okay', 'yeah right', 'I see', 'oh']) expect(isBackchannel(t), t).toBe(true);
    for (const t of ['wait', 'stop please', 'no that is wrong', 'okay but why', '', 'yeah yeah yeah yeah']) expect(isBackchannel(t), t).toBe(false);
  });

  it('speech over the answer interrupts once it lasts the confirmation time, not if it stopped before', () => {
    vi.useFakeTimers();
    const { p, calls, busy } = policy({ now: true });
    p.speechOverAnswer();
    vi.advanceTimersByTime(349);
    expect(calls.interrupt).toBe(0);
    vi.advanceTimersByTime(1);
    expect(calls.interrupt).toBe(1);
    busy.now = false;
    p.speechOverAnswer();
    vi.advanceTimersByTime(1000);
    expect(calls.interrupt).toBe(1); // a click: over before the confirmation time
  });

  it('real words interrupt at once; a backchannel is neither an interruption nor input', () => {
    vi.useFakeTimers();
    const { p } = policy({ now: true });
    expect(p.transcript('wait what', false)).toBe('input'); // nothing over the answer: plain input
    p.speechOverAnswer();
    expect(p.transcript('uh', false)).toBe('ignore');
    expect(p.transcript('wait what about', false)).toBe('interrupt');
    p.clearCandidate();
    p.speechOverAnswer();
    expect(p.transcript('uh huh', true)).toBe('ignore');
    expect(p.transcript('later words', false)).toBe('input'); // the final of a backchannel closed the candidate
  });

  it('after an interruption nobody follows up, the grace runs out; speech or words in it keep the turn open', () => {
    vi.useFakeTimers();
    const { p, calls, busy } = policy();
    p.interrupted();
    vi.advanceTimersByTime(1999);
    expect(calls.graceOver).toBe(0);
    vi.advanceTimersByTime(1);
    expect(calls.graceOver).toBe(1);

    p.interrupted();
    busy.now = true; // the user is talking (or their words are being recognised)
    vi.advanceTimersByTime(5000);
    expect(calls.graceOver).toBe(1);
    busy.now = false;
    vi.advanceTimersByTime(2000);
    expect(calls.graceOver).toBe(2);

    p.interrupted();
    p.userFollowedUp();
    vi.advanceTimersByTime(10_000);
    expect(calls.graceOver).toBe(2);
  });
});
