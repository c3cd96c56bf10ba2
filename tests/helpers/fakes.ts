import { vi } from 'vitest';
import { EventQueue, type EngineEvent } from '../../src/async-reasoning/events.ts';
import type { Recognizer } from '../../src/asr/recognizer.ts';

/** A recogniser that does what the test says (by default: hears nothing). */
export function fakeRecognizer(recognize: Recognizer['recognize'] = async () => ({ text: '', segments: [] }), name = 'fake'): Recognizer {
  return { name, recognize, close: async () => undefined };
}

/** An engine turn the test drives: it pushes the events, and the controls are recorded. */
export function scriptedTurn() {
  const t = {
    events: new EventQueue<EngineEvent>(),
    finished: false,
    ending: false,
    get acceptsInput() {
      return !t.finished && !t.ending;
    },
    interrupt: vi.fn((_o: { heardChars: number | Promise<number> }) => undefined),
    end: vi.fn(() => void (t.ending = true)),
    addUserInput: vi.fn(),
    userWentQuiet: vi.fn(),
    userResumed: vi.fn(),
    endUserInput: vi.fn(),
    settled: async () => undefined,
    abort: () => undefined,
  };
  return t;
}
export type ScriptedTurn = ReturnType<typeof scriptedTurn>;

/** An engine whose every startTurn gives a new scripted turn, kept in `turns`. */
export function scriptedEngine() {
  const turns: ScriptedTurn[] = [];
  const engine = {
    startTurn: vi.fn(() => {
      const t = scriptedTurn();
      turns.push(t);
      return t;
    }),
    truncateAnswer: vi.fn(async (_t: unknown, _heard: number | Promise<number>) => undefined),
    setBudgets: () => undefined,
    close: vi.fn(async () => undefined),
  };
  return { engine, turns };
}
