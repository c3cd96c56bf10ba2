import type { CausalLM } from '../llm/runtime/causal-lm.ts';
import type { CacheBlock } from '../llm/runtime/kv-cache.ts';
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
 */
export async function askControlQuestion(lm: CausalLM, view: CacheBlock[], cfg: TurnConfig, step: number): Promise<ProbeAnswer> {
  const { logits } = await lm.forward([{ view, tokens: [...cfg.ids.controlQuestion], persist: false }]);
  cfg.logitsHook?.('control', logits[0], step);
  return probeAnswer(logits[0], cfg.yesIds, cfg.noIds, cfg.probeThreshold);
}
