import { vi } from 'vitest';
import { EventQueue, type EngineEvent } from '../../src/async-reasoning/events.ts';
import type { Recognizer } from '../../src/asr/recognizer.ts';

/** A recogniser that does what the test says (by default: hears nothing). */
export function fakeRecognizer(recognize: Recognizer['recognize'] = async () => ({ text: '', segments: [] }), name = 'fake'): Recognizer {
  return { name, recognize, close: async () => undefined };
}

/** An engine turn the test drives: it pushes the events, and the controls are recorded. */
export function scriptedTurn() {
  return {
    events: new EventQueue<EngineEvent>(),
    finished: false,
    interrupt: vi.fn(),
    addUserInput: vi.fn(),
    endUserInput: vi.fn(),
    settled: async () => undefined,
    abort: () => undefined,
  };
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
    truncateAnswer: vi.fn(async () => undefined),
    setBudgets: () => undefined,
    close: vi.fn(async () => undefined),
  };
  return { engine, turns };
}
