import { exportGguf } from '../llm/export/gguf.ts';
import type { GgufType } from '../llm/export/ggml-quant.ts';
import { resolveModelSource } from '../llm/model/model-source.ts';
import { PRESETS, makeTestModel } from '../llm/export/test-model.ts';
import { listGraphs, pruneGraphs } from '../llm/graph/graph-cache.ts';
import { formatBytes } from './progress.ts';
import { ProgressBar } from './progress.ts';

interface MakeTestCliOptions {
  out: string;
  seed: number;
  preset?: string;
  layers?: number;
  hidden?: number;
  heads?: number;
  kvHeads?: number;
  headDim?: number;
  intermediate?: number;
  untied?: boolean;
  dtype: 'float32' | 'bfloat16';
}

/** Writes a model folder as GGUF. */
export async function runExport(o: { model: string; out: string; gguf: boolean; type: GgufType; offline: boolean }): Promise<void> {
  if (!o.gguf) throw new Error('choose an export format: --gguf');
  const dir = await resolveModelSource(o.model, { offline: o.offline });
  const bar = new ProgressBar(`writing ${o.type} GGUF`);
  const { bytes, tensors } = await exportGguf(dir, o.out, { type: o.type, onProgress: (done, total, what) => bar.update(done, total, what) });
  bar.done();
  process.stdout.write(`${o.out}: ${tensors} tensors, ${formatBytes(bytes)}\n`);
}

/** Lists the built graphs, or removes stale ones (--prune) or all (--clear). */
export function runCache(o: { prune: boolean; clear: boolean }): void {
  if (o.prune || o.clear) {
    const removed = pruneGraphs(o.clear);
    const bytes = removed.reduce((a, g) => a + g.bytes, 0);
    process.stdout.write(`removed ${removed.length} graph(s), ${formatBytes(bytes)}\n`);
    return;
  }
  for (const g of listGraphs()) {
    const what = g.meta ? `${g.meta.source} (${g.meta.weights}, ${g.meta.ropeMode}, ${g.meta.maxPositions} positions)` : '?';
    process.stdout.write(`${g.key}  ${formatBytes(g.bytes).padStart(10)}  ${what}${g.stale ? `  [stale: ${g.stale}]` : ''}\n`);
  }
}

/** Writes a random-weight model folder. */
export function runMakeTest(o: MakeTestCliOptions): void {
  if (o.preset && !PRESETS[o.preset]) {
    throw new Error(`unknown preset "${o.preset}"; known: ${Object.keys(PRESETS).join(', ')}`);
  }
  if (o.dtype !== 'float32' && o.dtype !== 'bfloat16') throw new Error('--dtype must be float32 or bfloat16');
  const bar = new ProgressBar('writing weights');
  const { dir, shape } = makeTestModel({
    ...o,
    tieEmbeddings: o.untied ? false : undefined,
    onProgress: (done, total, name) => bar.update(done, total, name),
  });
  bar.done();
  process.stdout.write(`${dir}: ${JSON.stringify(shape)}\n`);
}
