import type { DoneReason } from './events.ts';
import { TokenStream } from './token-stream.ts';
import type { TurnRuntime } from './turn-runtime.ts';

/**
 * The baselines in one stream: think then answer, or answer without thinking. As a conventional
 * pipeline does, it waits for the whole utterance before it starts, and a barge-in ends the turn
 * within one step, keeping what was heard; what the user says next is a new turn.
 */
export async function runSingle(rt: TurnRuntime): Promise<DoneReason> {
  const { lm, tokenizer, standing } = rt.ctx;
  const { cfg } = rt;
  const stopNow = async (): Promise<DoneReason | null> => {
    const stop = rt.stopReason();
    if (stop) return stop;
    if (await rt.cutAnswer()) return 'interrupted';
    return null;
  };

  while (rt.user.open || rt.user.waiting) {
    const stop = await stopNow();
    if (stop) return stop;
    const row = rt.takeUserRow();
    if (row) await lm.forward([row]);
    else await rt.waitForInput();
  }

  const decode = (ids: number[]) => tokenizer.decode(ids);
  const { tail, output } = rt.blocks.makeSingle();
  const thinker = (rt.thinker = new TokenStream(output, decode, cfg.singleForbidden));
  const writer = (rt.writer = new TokenStream(output, decode, cfg.writerForbidden));
  const tailIds = cfg.mode === 'think' ? cfg.ids.thinkTail : cfg.ids.noThinkTail;
  await lm.forward([{ view: [standing.plain, ...rt.blocks.sharedBlocks, tail], tokens: tailIds.slice(0, -1) }]);
  let thinking = cfg.mode === 'think';
  rt.setState(thinking ? 'thinker_only' : 'writer_only', 'turn-started', 'turn started');
  (thinking ? thinker : writer).pending = tailIds.slice(-1);

  for (;;) {
    const stop = await stopNow();
    if (stop) return stop;
    const stream = thinking ? thinker : writer;
    const view = rt.blocks.singleView;
    if (!rt.fits(view, stream.pending.length)) return 'context-limit';
    const fed = stream.pending.length;
    const { logits } = await lm.forward([{ view, tokens: stream.pending }]);
    rt.stepNo++;
    stream.noteFed(fed);
    const tMs = rt.now();
    if (thinking) {
      if (rt.nextThought(thinker, logits[0], tMs) === null) {
        thinking = false;
        writer.pending = [...cfg.ids.endThinking];
      }
    } else {
      const end = rt.nextAnswerToken(writer, logits[0], tMs);
      if (end) return end;
    }
  }
}
