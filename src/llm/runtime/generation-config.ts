import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SamplingOptions } from './sampling.ts';

/**
 * The sampling a model folder's own generation_config.json advises (its makers' settings for
 * thinking), or null where it has none. `do_sample: false` means greedy.
 */
export function advisedSampling(dir: string): SamplingOptions | null {
  const file = join(dir, 'generation_config.json');
  if (!existsSync(file)) return null;
  let g: Record<string, unknown>;
  try {
    g = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null; // a broken optional file: fall back to the family's published settings
  }
  const num = (k: string) => (typeof g[k] === 'number' && Number.isFinite(g[k]) ? (g[k] as number) : undefined);
  if (g.do_sample === false) return { temperature: 0 };
  if (g.do_sample !== true && num('temperature') === undefined) return null;
  return { temperature: num('temperature') ?? 1, topK: num('top_k'), topP: num('top_p') };
}

/** Qwen3's published settings: thinking (also what its folders' generation_config.json carry) and non-thinking. */
export const QWEN3_THINKING: SamplingOptions = { temperature: 0.6, topP: 0.95, topK: 20 };
export const QWEN3_NON_THINKING: SamplingOptions = { temperature: 0.7, topP: 0.8, topK: 20 };
