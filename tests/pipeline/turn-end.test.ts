import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TurnEndPolicy, type TurnEndDecision } from '../../src/pipeline/turn-end.ts';

describe('TurnEndPolicy: the turn ends on the words where the model can tell, on silence where it cannot', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());
  const make = (mode: 'words' | 'silence') => {
    const ends: (TurnEndDecision & { at: number })[] = [];
    const p = new TurnEndPolicy({ mode, threshold: 0.5, incompleteSilenceMs: 1500, pEndWaitMs: 400 }, () => Date.now(), (d) => ends.push({ ...d, at: Date.now() }));
    return { p, ends };
  };

  it('a finished question ends the turn as soon as the model has read its last words', () => {
    const { p, ends } = make('words');
    const t0 = Date.now();
    p.phraseEnded('plus five', t0, null);
    vi.advanceTimersByTime(60);
    expect(ends).toEqual([]);
    p.pEnd(0.93, 'what is twelve plus five');
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatchObject({ by: 'words', pEnd: 0.93, voiceEndAt: t0 });
    expect(ends[0].at - t0).toBe(60);
  });

  it('an unfinished one waits for the long silence, and speech before it continues the message', () => {
    const { p, ends } = make('words');
    const t0 = Date.now();
    p.phraseEnded('what is seventeen times', t0, null);
    p.pEnd(0.04, 'what is seventeen times');
    vi.advanceTimersByTime(900);
    expect(ends).toEqual([]);
    p.speechStarted(); // "... eight"
    vi.advanceTimersByTime(2000);
    expect(ends).toEqual([]);
    const t1 = Date.now();
    p.phraseEnded('eight', t1, null);
    p.pEnd(0.88, 'what is seventeen times eight');
    expect(ends).toMatchObject([{ by: 'words', pEnd: 0.88, voiceEndAt: t1 }]);
  });

  it('an unfinished question the user never finishes still ends after the long silence, counted from the voice', () => {
    const { p, ends } = make('words');
    const t0 = Date.now();
    p.phraseEnded('what is seventeen times', t0, null);
    vi.advanceTimersByTime(100);
    p.pEnd(0.04, 'what is seventeen times');
    vi.advanceTimersByTime(1399);
    expect(ends).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ends).toMatchObject([{ by: 'silence', pEnd: 0.04, voiceEndAt: t0 }]);
  });

  it('a reading of older words does not decide for the phrase that just closed', () => {
    const { p, ends } = make('words');
    p.phraseEnded('five', Date.now(), null);
    p.pEnd(0.97, 'what is twelve plus'); // a step that was already running when "five" came
    expect(ends).toEqual([]);
    p.pEnd(0.9, 'what is twelve plus five');
    expect(ends).toMatchObject([{ by: 'words', pEnd: 0.9 }]);
  });

  it('no reading in time: it decides on the last one known', () => {
    const { p, ends } = make('words');
    p.pEnd(0.2, 'what is');
    p.phraseEnded('twelve plus five', Date.now(), null);
    vi.advanceTimersByTime(400);
    expect(ends).toEqual([]); // 0.2 is unfinished: the long silence decides
    vi.advanceTimersByTime(1100);
    expect(ends).toMatchObject([{ by: 'silence', pEnd: 0.2 }]);
  });

  it('a turn the model never read (a baseline encodes the words only once they end) ends on the usual silence, not the long wait', () => {
    const { p, ends } = make('words');
    const t0 = Date.now();
    p.phraseEnded('what is twelve plus five', t0, null);
    vi.advanceTimersByTime(599);
    expect(ends).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ends).toMatchObject([{ by: 'silence', pEnd: null }]);
  });

  it('silence mode ends the turn at every phrase end: the recogniser waited the whole silence already', () => {
    const { p, ends } = make('silence');
    p.phraseEnded('what is seventeen times', Date.now(), null);
    expect(ends).toMatchObject([{ by: 'silence' }]);
  });
});
