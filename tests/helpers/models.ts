import { afterAll, beforeAll } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { Tokenizer } from '../../src/llm/model/tokenizer.ts';
import type { RopeMode } from '../../src/llm/graph/contract.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestModel, type MakeTestModelOptions } from '../../src/llm/export/test-model.ts';
import { loadCausalLM, type LoadedModel } from '../../src/llm/load.ts';

/** A per-process scratch folder; each test file builds its graphs into its own cache. */
export function scratchDir(prefix = 'asyncvoice-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The two configurations the runtime must be exact on (between them: GQA and MQA,
 * head_dim != hidden/heads, tied and untied embeddings, qk-norm, fp32 and bf16 sources). */
export const CONFIGS: Record<string, Omit<MakeTestModelOptions, 'out'>> = {
  'gqa-tied-fp32': { preset: 'tiny', seed: 11 },
  'mqa-untied-bf16': { layers: 3, hidden: 48, heads: 4, kvHeads: 1, headDim: 24, intermediate: 96, tieEmbeddings: false, dtype: 'bfloat16', seed: 5 },
};

/** Other Llama-family variants the builder must get right (checked against the reference). */
export const VARIANTS: Record<string, Omit<MakeTestModelOptions, 'out'>> = {
  'qwen2-bias': { modelType: 'qwen2', layers: 2, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, intermediate: 96, tieEmbeddings: false, seed: 21 },
  'llama-mha': { modelType: 'llama', layers: 2, hidden: 64, heads: 4, kvHeads: 4, headDim: 16, intermediate: 96, tieEmbeddings: true, seed: 22 },
};

export async function makeAndLoad(name: string, root: string, maxPositions = 1024, ropeMode: RopeMode = 'rotate-query'): Promise<LoadedModel & { dir: string }> {
  process.env.ASYNCVOICE_CACHE_DIR = join(root, 'cache');
  const out = join(root, name);
  const dir = existsSync(join(out, 'model.safetensors')) ? out : makeTestModel({ ...(CONFIGS[name] ?? VARIANTS[name]), out }).dir;
  return loadCausalLM(dir, { maxPositions, ropeMode });
}

/** max |a - b| over two logit arrays of the same length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * A test file's tiny made model (GQA, tied, fp32) and its tokenizer, loaded before the file's tests
 * and closed after them. Read `lm` and `tok` inside tests, not at import time.
 */
export function tinyModelFixture(maxPositions = 2048): { lm: LoadedModel['lm']; tok: Tokenizer; dir: string } {
  const root = scratchDir();
  const f = { lm: undefined as unknown as LoadedModel['lm'], tok: undefined as unknown as Tokenizer, dir: '' };
  beforeAll(async () => {
    const m = await makeAndLoad('gqa-tied-fp32', root, maxPositions);
    f.lm = m.lm;
    f.dir = m.dir;
    f.tok = await Tokenizer.fromFolder(m.dir);
  });
  afterAll(async () => {
    await f.lm?.close();
    rmSync(root, { recursive: true, force: true });
  });
  return f;
}
