import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ProgressBar } from '../src/cli/progress.ts';
import { makeTestModel } from '../src/llm/test-model.ts';

/** The random-weight model with a preset's real shapes that benchmarks share (made once). */
export function benchModel(preset: string): string {
  const dir = join(process.cwd(), '.cache', 'bench', `${preset}-bf16`);
  if (!existsSync(join(dir, 'model.safetensors'))) {
    const bar = new ProgressBar(`making ${preset} (random weights, bf16)`);
    makeTestModel({ out: dir, preset, dtype: 'bfloat16', seed: 0, onProgress: (d, t, n) => bar.update(d, t, n) });
    bar.done();
  }
  return dir;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const fmt = (x: number, d = 1) => x.toFixed(d);
