import type { CausalLM } from '../llm/runtime/causal-lm.ts';
import { asyncViews, viewUpTo, type AsyncBlocks } from './layout.ts';
import { tokenProbabilities } from './end-of-message.ts';
import type { TurnConfig } from './turn-config.ts';

export interface ProbeAnswer {
  pYes: number;
  pNo: number;
  decision: 'yes' | 'no';
}

/**
 * P(yes) and P(no) from next-token logits, each summed over its single-token spellings; "yes" when
 * P(yes) / (P(yes) + P(no)) reaches `threshold` (0.5: the likelier answer; higher: the writer waits
 * until the thinker is surer).
 */
export function probeAnswer(logits: Float32Array, yesIds: readonly number[], noIds: readonly number[], threshold = 0.5): ProbeAnswer {
  const prob = tokenProbabilities(logits);
  const pYes = yesIds.reduce((a, id) => a + prob(id), 0);
  const pNo = noIds.reduce((a, id) => a + prob(id), 0);
  const share = pYes + pNo > 0 ? pYes / (pYes + pNo) : 0;
  return { pYes, pNo, decision: share >= threshold && pYes > 0 ? 'yes' : 'no' };
}

/**
 * The control question ("are my thoughts far enough ahead…?") asked after the thinker's view, as
 * a row that leaves no trace in the cache.
 *
 * Read from the cache ('cache'), it sees the answer with the K/V the writer's tokens got in the
 * writer's view, and the thinker's split and thoughts with the K/V they got beside the answer as it
 * was when each was written (the split: before any answer). A model trained on the views as whole
 * sequences then misjudges exactly what the question is for, how far the answer has come: the shipped
 * model's question disagreed with a from-scratch reading at 68 % of probes (bench:layout, KL 2.5
 * nats) and said yes to answers that had caught up. 'fresh' encodes the answer, the split and the
 * thoughts again after the user's words, as the view reads in one piece: exact, for a prefill of
 * those tokens per question (thoughts and answer so far, a few times a turn).
 */
export async function askControlQuestion(lm: CausalLM, b: AsyncBlocks, cfg: TurnConfig, step: number): Promise<ProbeAnswer> {
  const v = asyncViews(b);
  const row =
    cfg.probeReads === 'fresh'
      ? { view: [...viewUpTo(v.thinker, b.thinkerTail), b.control], tokens: [...b.writerOutput.tokens, ...b.thinkerSplit.tokens, ...b.thinkerOutput.tokens, ...cfg.ids.controlQuestion] }
      : { view: v.control, tokens: [...cfg.ids.controlQuestion] };
  const { logits } = await lm.forward([{ ...row, persist: false }]);
  cfg.logitsHook?.('control', logits[0], step);
  return probeAnswer(logits[0], cfg.yesIds, cfg.noIds, cfg.probeThreshold);
}
