import { Option, type Command } from 'commander';
import { GGUF_TYPES, exportGguf, type GgufType } from '../llm/export/gguf.ts';
import { resolveModelSource } from '../llm/model/model-source.ts';
import { PRESETS, makeTestModel } from '../llm/export/test-model.ts';
import { cacheRoot, listGraphs, pruneGraphs } from '../llm/graph/graph-cache.ts';
import { formatBytes } from './progress.ts';
import { intArg } from './options.ts';
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

export function registerModel(program: Command): void {
  const model = program.command('model').description('model utilities');
  model
    .command('cache')
    .description(`list the built decoder graphs (${cacheRoot()}/graphs); --prune removes stale ones, --clear all`)
    .option('--prune', 'remove graphs of older builders, of vanished model folders, or half built', false)
    .option('--clear', 'remove every built graph (they are rebuilt on next use)', false)
    .action(runCache);
  model
    .command('make-test')
    .description('write a random-weight Qwen3-architecture model (HF layout, real Qwen3 tokenizer)')
    .requiredOption('--out <dir>', 'output folder')
    .option('--seed <n>', 'weights seed; the same seed gives the same bytes', intArg('--seed', 0, 2 ** 32 - 1), 0)
    .option('--preset <name>', `shapes preset: ${Object.keys(PRESETS).join(', ')} (default tiny)`)
    .option('--layers <n>', 'decoder layers', intArg('--layers', 1, 256))
    .option('--hidden <n>', 'hidden size', intArg('--hidden', 2, 16_384))
    .option('--heads <n>', 'attention heads', intArg('--heads', 1, 256))
    .option('--kv-heads <n>', 'key/value heads', intArg('--kv-heads', 1, 256))
    .option('--head-dim <n>', 'head dimension (even)', intArg('--head-dim', 2, 1024))
    .option('--intermediate <n>', 'MLP width', intArg('--intermediate', 1, 65_536))
    .option('--untied', 'separate lm_head instead of tied embeddings')
    .option('--dtype <t>', 'float32 or bfloat16', 'float32')
    .action(runMakeTest);
  model
    .command('export')
    .description('write a model folder in another runtime\'s format: --gguf (llama.cpp)')
    .requiredOption('--model <dir|hf:Org/Name>', 'a Hugging Face model folder, or a Hub id already downloaded')
    .requiredOption('--out <file>', 'file to write')
    .option('--gguf', 'GGUF, as llama.cpp (and Ollama, node-llama-cpp) load it', false)
    .addOption(new Option('--type <t>', 'weight matrices: q4_0 and q8_0 as llama.cpp quantises them, or f32').choices([...GGUF_TYPES]).default('q4_0'))
    .option('--offline', 'never use the network', false)
    .action(runExport);
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
