import { RuntimeUsageError } from '../../errors.ts';
import type { CausalLM } from './causal-lm.ts';
import { Sampler, type SamplingOptions } from './sampling.ts';

export interface GenerateOptions extends SamplingOptions {
  maxTokens: number;
  stopTokens?: readonly number[];
  forbidden?: ReadonlySet<number>;
  signal?: AbortSignal;
  onToken?: (id: number) => void;
}

export interface GenerateResult {
  tokenIds: number[];
  stoppedBy: 'stop-token' | 'max-tokens' | 'context-limit' | 'abort';
  prefillMs: number;
  decodeMsPerToken: number;
}

/**
 * Plain single-stream generation in a fresh cache block, dropped afterwards. Asked for more tokens
 * than the context holds, it stops when the context is full (`context-limit`), keeping the text.
 */
export async function generate(lm: CausalLM, promptIds: number[], opts: GenerateOptions): Promise<GenerateResult> {
  if (!promptIds.length) throw new RuntimeUsageError('prompt is empty: nothing to condition on');
  if (promptIds.length > lm.maxPositions) {
    throw new RuntimeUsageError(`the prompt is ${promptIds.length} tokens; this model's context holds ${lm.maxPositions} (--max-context)`);
  }
  const sampler = new Sampler(opts);
  const stop = new Set(opts.stopTokens ?? []);
  const block = lm.cache.createBlock('generate');
  const tokenIds: number[] = [];
  let stoppedBy: GenerateResult['stoppedBy'] = 'max-tokens';
  try {
    const t0 = performance.now();
    let { logits } = await lm.forward([{ view: [block], tokens: promptIds }]);
    const prefillMs = performance.now() - t0;
    const t1 = performance.now();
    let steps = 0;
    while (tokenIds.length < opts.maxTokens) {
      if (opts.signal?.aborted) {
        stoppedBy = 'abort';
        break;
      }
      const next = sampler.sample(logits[0], [...promptIds, ...tokenIds], opts.forbidden);
      tokenIds.push(next);
      opts.onToken?.(next);
      if (stop.has(next)) {
        stoppedBy = 'stop-token';
        break;
      }
      if (tokenIds.length >= opts.maxTokens) break;
      // The sampled token goes in at the next position: the context must have room for it.
      if (promptIds.length + tokenIds.length > lm.maxPositions) {
        stoppedBy = 'context-limit';
        break;
      }
      ({ logits } = await lm.forward([{ view: [block], tokens: [next] }]));
      steps++;
    }
    const decodeMs = performance.now() - t1;
    return { tokenIds, stoppedBy, prefillMs, decodeMsPerToken: steps ? decodeMs / steps : 0 };
  } finally {
    block.drop();
  }
}
