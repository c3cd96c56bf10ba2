import type { EngineState } from './events.ts';

/** What the async scheduler knows before a step. */
export interface AsyncStepInput {
  state: EngineState;
  /** The user is still speaking (the writer holds its tongue). */
  userOpen: boolean;
  /** The answer's speech is far enough ahead of the listener (see speech-pace.ts): the writer holds. */
  writerHeld?: boolean;
  /** Words arrived since the last step. */
  userWaiting: boolean;
  /** Tokens waiting to be fed to the writer (more than one: fixed text, fed without sampling). */
  writerPending: number;
  thinkerEnded: boolean;
  /** Whether one more writer token, and the thinker's pending tokens, fit in the model's positions. */
  writerFits: boolean;
  thinkerFits: boolean;
}

/** Which rows go into the next batched call; `finish` ends the turn instead, `wait` waits for the user. */
export interface AsyncStepPlan {
  user: boolean;
  /** 'fixed': feed the writer's fixed text (all but its last token); 'step': feed and sample. */
  writer: 'fixed' | 'step' | null;
  thinker: boolean;
  /** The thinker's view is full: its thoughts end here, and the writer goes on alone. */
  thinkerOutOfRoom: boolean;
  finish: 'context-limit' | null;
  wait: boolean;
}

/**
 * The asynchronous schedule as a function of the turn's state: the writer speaks only while the
 * thinker allows it, the user is not talking and its speech is not far ahead of the listener; the
 * thinker thinks until it ends its thoughts, its budget is spent or the writer is on its own; the
 * user's words go in as soon as they come.
 */
export function planAsyncStep(i: AsyncStepInput): AsyncStepPlan {
  const plan: AsyncStepPlan = { user: i.userWaiting, writer: null, thinker: false, thinkerOutOfRoom: false, finish: null, wait: false };
  const writerMayRun = (i.state === 'thinker_and_writer' || i.state === 'writer_only') && !i.userOpen && !i.writerHeld;
  if (i.writerPending > 1) plan.writer = 'fixed';
  else if (writerMayRun) {
    if (!i.writerFits) return { ...plan, finish: 'context-limit' };
    plan.writer = 'step';
  }
  if (!i.thinkerEnded && i.state !== 'writer_only') {
    if (i.thinkerFits) plan.thinker = true;
    else plan.thinkerOutOfRoom = true;
  }
  plan.wait = !plan.user && !plan.writer && !plan.thinker && !plan.thinkerOutOfRoom;
  return plan;
}

/**
 * Whether to ask the control question now: every `controlEvery` thoughts or at a thinker paragraph
 * end, while the writer waits and (as the method does) while it writes, where a "no" stops it;
 * and, while it waits, as soon as the user has stopped and all their words so far are in the cache
 * (the listener starts waiting then; up to `controlEvery` thoughts later wasted ~0.7 s of it).
 * "Stopped" is the voice going quiet, before the final transcript closes the input: the probe
 * (≈ 0.2 s) then runs while the last words are recognised, and the writer, released, speaks as
 * soon as they are in. While the user is still talking the writer could not speak anyway.
 */
export function shouldProbe(i: {
  state: EngineState;
  /** Also ask while the writer writes (thinker_and_writer). */
  whileWriting?: boolean;
  thinkerEnded: boolean;
  /** The user is still talking (their voice has not gone quiet, nor their input closed). */
  userTalking: boolean;
  sinceProbe: number;
  controlEvery: number;
  thinkerParagraph: boolean;
  /** The user stopped since the last step, and nothing they said is waiting to go in. */
  userJustDone?: boolean;
}): boolean {
  if (i.thinkerEnded || i.userTalking) return false;
  if (i.state === 'thinker_and_writer' && i.whileWriting) return i.sinceProbe >= i.controlEvery || (i.sinceProbe > 0 && i.thinkerParagraph);
  if (i.state !== 'thinker_only') return false;
  return i.sinceProbe >= i.controlEvery || (i.sinceProbe > 0 && (i.thinkerParagraph || i.userJustDone === true));
}
