import type { ForwardRow } from '../llm/runtime/causal-lm.ts';
import type { DoneReason } from './events.ts';
import { encodeSeparators } from './layout.ts';
import { askControlQuestion } from './probe.ts';
import { planAsyncStep, shouldProbe } from './scheduler.ts';
import { writerHoldMs } from './speech-pace.ts';
import { TokenStream } from './token-stream.ts';
import type { TurnRuntime } from './turn-runtime.ts';

type Role = 'user' | 'thinker' | 'writer' | 'writer-fixed';

/** User input up to this many tokens rides in the streams' step; longer input runs alone first. */
const SOLO_USER_TOKENS = 2;

/**
 * The asynchronous decoder: thinker and writer over one cache, each seeing the other's output,
 * advanced in one batched call per step, with the user's words going in as they come.
 * Visibility: a token sampled in step t is fed in step t+1 (its K/V are made then) and the other
 * stream sees it from step t+2, since rows of one batched step do not see each other's new tokens.
 */
export async function runAsync(rt: TurnRuntime): Promise<DoneReason> {
  const { lm, tokenizer } = rt.ctx;
  const { cfg } = rt;
  const decode = (ids: number[]) => tokenizer.decode(ids);
  const b = rt.blocks.makeAsync();
  const thinker = (rt.thinker = new TokenStream(b.thinkerOutput, decode, cfg.thinkerForbidden));
  const writer = (rt.writer = new TokenStream(b.writerOutput, decode, cfg.writerForbidden, cfg.writerBannedPhrases));
  if (!rt.blocks.separatorsEncoded) await encodeSeparators(lm, b, cfg.ids);
  thinker.pending = [...cfg.ids.thinkerOutputPrefix];
  writer.pending = [...cfg.ids.writerOutputStart];
  rt.setState('thinker_only', 'turn-started', 'turn started');

  /** A thinker that ended its own thoughts gets more to think about (the user spoke again): it goes on. */
  const reopenThinker = (): boolean => {
    if (thinker.ended !== 'model') return false;
    thinker.ended = null;
    thinker.pending = [...cfg.ids.paragraph];
    thinker.pendingProduced = 0;
    return true;
  };

  let sinceProbe = 0;
  let stopsSeen = 0; // stops before the run began count too: the listener is waiting already
  for (;;) {
    const stop = rt.stopReason();
    if (stop) return stop;
    if (await rt.cutAnswer()) {
      writer.pending = [...writer.pending, ...cfg.ids.writerInterrupted];
      reopenThinker();
      rt.setState(thinker.ended ? 'writer_only' : 'thinker_only', 'user-interrupted', 'the user interrupted the answer');
      continue; // the end or abort may have come while the player was asked what was heard
    }
    const v = rt.blocks.asyncViews;
    const userRow = rt.takeUserRow();
    const holdMs = writerHoldMs(rt.pace);
    const plan = planAsyncStep({
      state: rt.state,
      userOpen: rt.user.open,
      writerHeld: holdMs > 0,
      userWaiting: userRow !== null,
      writerPending: writer.pending.length,
      thinkerEnded: thinker.ended !== null,
      writerFits: rt.fits(v.writer, 1),
      thinkerFits: rt.fits(v.thinker, thinker.pending.length),
    });
    if (plan.finish) return plan.finish;
    if (plan.thinkerOutOfRoom) {
      thinker.ended = 'context';
      rt.setState('writer_only', 'thinking-out-of-room', 'context limit reached while thinking');
    }
    // Rows of one call are padded to the longest: the user's words (often 10-20 tokens when a
    // final transcript lands) beside two one-token rows made all three pay for every word (428 ms
    // against ≈ 170 + 45 ms apart, Qwen3-0.6B int4). Longer input goes in alone, and the streams
    // step right after it, already seeing it.
    const userAlone = userRow !== null && userRow.tokens.length > SOLO_USER_TOKENS && (plan.writer !== null || plan.thinker);
    if (userAlone) {
      const { logits } = await lm.forward([userRow]);
      rt.stepNo++;
      rt.userEnd(logits[0]);
    }
    const rows: ForwardRow[] = [];
    const roles: Role[] = [];
    const add = (role: Role, row: ForwardRow) => {
      rows.push(row);
      roles.push(role);
    };
    if (userRow && !userAlone) add('user', userRow);
    // Fixed text (the answer's start, an interruption marker) is fed without sampling, all but its
    // last token, which the writer's next real step feeds and samples after.
    if (plan.writer === 'fixed') add('writer-fixed', { view: v.writer, tokens: writer.pending.slice(0, -1) });
    if (plan.writer === 'step') add('writer', { view: v.writer, tokens: writer.pending });
    if (plan.thinker) add('thinker', { view: v.thinker, tokens: thinker.pending });
    if (!rows.length) {
      // Thinking is over and the user is still speaking, or the writer is held: until its time is up.
      if (plan.wait) await rt.waitForInput(holdMs > 0 ? holdMs : undefined);
      continue;
    }

    const { logits } = await lm.forward(rows);
    rt.stepNo++;
    const tMs = rt.now();
    for (let i = 0; i < rows.length; i++) {
      const role = roles[i];
      if (role === 'user') rt.userEnd(logits[i]);
      if (role === 'writer-fixed') writer.noteFed(rows[i].tokens.length);
      if (role === 'thinker') {
        thinker.noteFed(rows[i].tokens.length);
        if (rt.nextThought(thinker, logits[i], tMs) !== null) sinceProbe++;
      }
      if (role === 'writer') {
        writer.noteFed(rows[i].tokens.length);
        const end = rt.nextAnswerToken(writer, logits[i], tMs);
        if (end) return end;
        // The writer hands back at its sentence (or paragraph) ends: the thinker's word is needed for the next.
        if (rt.state === 'thinker_and_writer' && (cfg.handBack === 'sentence' ? writer.endsSentence() : writer.endsParagraph())) {
          const what = writer.endsParagraph() ? 'paragraph' : 'sentence';
          rt.setState('thinker_only', `writer-${what}`, `writer finished a ${what}; waiting for the thinker`);
        }
      }
    }

    // New words go back to the thinker alone: words after it had ended its thoughts are worth
    // thinking about, and a "yes" given at a pause was for the question as it stood, so it is asked
    // again at the next stop.
    if (userRow && (reopenThinker() || (rt.user.talking && rt.state === 'thinker_and_writer'))) rt.setState('thinker_only', 'user-spoke', 'the user said more; thinking resumes');

    // A stop stays pending until the question is asked for it: the voice can go quiet before the
    // thinker's first thought, and the probe then follows that thought, not the final transcript.
    const userJustDone = rt.user.stops > stopsSeen && !rt.user.waiting;
    const probe = shouldProbe({
      state: rt.state,
      whileWriting: cfg.probeWhileWriting,
      thinkerEnded: thinker.ended !== null,
      userTalking: rt.user.talking,
      sinceProbe,
      controlEvery: cfg.controlEvery,
      thinkerParagraph: thinker.endsParagraph(),
      userJustDone,
    });
    if (probe || rt.state !== 'thinker_only') stopsSeen = rt.user.stops;
    if (probe) {
      sinceProbe = 0;
      const a = await askControlQuestion(lm, rt.blocks.asyncBlocks!, cfg, rt.stepNo);
      rt.probes++;
      rt.emit({ type: 'control', ...a, step: rt.stepNo, tMs: rt.now() });
      if (a.decision === 'yes') rt.setState('thinker_and_writer', 'probe-yes', 'thinker says its thoughts are far enough ahead');
      else if (rt.state === 'thinker_and_writer') rt.setState('thinker_only', 'probe-no', 'thinker says the answer has caught up with its thoughts');
    }
  }
}
