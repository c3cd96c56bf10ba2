import { availableParallelism } from 'node:os';
import { intArg } from './options.ts';
import { Option, type Command } from 'commander';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../backend/onnx.ts';
import { PREFILL_WEIGHTS, loadCausalLM, type LoadedModel, type PrefillWeights } from '../llm/load.ts';
import { HEAD_FORMATS, KV_FORMATS, WEIGHT_FORMATS, defaultHeadFormat, defaultKvFormat, type HeadFormat, type KvFormat, type WeightFormat } from '../llm/graph/contract.ts';
import { ProgressBar, formatBytes } from './progress.ts';
import { DEFAULT_MODEL, shippedModel } from '../llm/model/default-model.ts';
import { ModelSourceError } from '../errors.ts';

export interface ModelCliOptions {
  model: string;
  offline?: boolean;
  device: ExecutionProvider;
  threads?: number;
  maxContext?: number;
  weights: WeightFormat;
  head?: HeadFormat;
  kv?: KvFormat;
  prefillWeights?: PrefillWeights;
}

/** More threads than this only add contention (each holds a stack and a share of the scratch memory). */
const MAX_THREADS = 4 * availableParallelism();

/** --model, --offline, --device, --threads, --max-context: shared by every command that runs the LLM. */
export function addModelOptions(cmd: Command): Command {
  return cmd
    .option('--model <dir|hf:Org/Name>', 'a Hugging Face model folder, or a Hub id such as hf:Qwen/Qwen3-0.6B (default: the small reasoning model that ships inside asyncvoice)', shippedModel())
    .hook('preAction', (c) => {
      if (!c.opts().model) throw new ModelSourceError(`no --model given, and no shipped model at ${DEFAULT_MODEL} (training/run.sh makes it)`);
    })
    .option('--offline', 'never use the network; Hub ids must already be in the Hugging Face cache', false)
    .addOption(new Option('--device <ep>', 'execution provider').choices([...EXECUTION_PROVIDERS]).default('cpu'))
    .option('--threads <n>', `threads per operator, up to ${MAX_THREADS} (4× this machine's cores; default: onnxruntime decides)`, intArg('--threads', 1, MAX_THREADS))
    .option('--max-context <n>', 'longest context in tokens (default: min(model limit, 32768))', intArg('--max-context', 16, 1 << 20))
    .addOption(new Option('--weights <format>', 'linear weights: fp32 (exact), int4 (blockwise, ~3× less to read per token) or int8 (per channel)').choices([...WEIGHT_FORMATS]).default('fp32'))
    .addOption(new Option('--prefill-weights <format>', 'with --weights int4: calls of many tokens (prompts, history) run int8 weights, ~1.5× faster on CPUs with 8-bit dot products, or the same int4 ones (less memory)').choices([...PREFILL_WEIGHTS]).default('int8'))
    .addOption(new Option('--head <format>', 'embeddings and LM head (read whole every token): fp32, int8 or int4 (default: int4 with --weights int4, else fp32)').choices([...HEAD_FORMATS]))
    .addOption(new Option('--kv <format>', 'K/V cache: fp32 (exact) or int8 (a quarter of the bytes to read per token; default with --weights int4)').choices([...KV_FORMATS]));
}

export async function loadModelWithProgress(
  o: ModelCliOptions,
  quiet = false,
  report?: (p: { what: string; done: number; total: number | null }) => void,
  /** The process also listens (serve): steps give way to the audio front end (see docs/architecture.md). */
  listening = false,
): Promise<LoadedModel> {
  const download = new ProgressBar('download');
  const build = new ProgressBar('building graph');
  let building = false;
  let starting = false;
  const t0 = performance.now();
  // Loading takes seconds even from the cache: say what is happening from the first moment.
  if (!quiet) process.stderr.write(`loading ${o.model} (${o.weights} weights, ${o.head ?? defaultHeadFormat(o.weights)} head, ${o.kv ?? defaultKvFormat(o.weights)} kv, ${o.device})…\n`);
  const model = await loadCausalLM(o.model, {
    offline: o.offline,
    executionProvider: o.device,
    intraOpThreads: o.threads,
    maxPositions: o.maxContext,
    weights: o.weights,
    head: o.head,
    kv: o.kv,
    prefillWeights: o.prefillWeights,
    buildInWorker: true,
    // Where the steps' threads can run at a lower priority (Linux), spinning costs listening little
    // and saves ~10 % a step; elsewhere they must not spin, or they take the cores listening needs.
    ...(listening ? { lowerPriority: true, spinning: process.platform === 'linux' } : {}),
    onProgress: (p) => {
      if (p.stage === 'download') report?.({ what: `downloading ${p.file}`, done: p.loadedBytes, total: p.totalBytes });
      else if (p.stage === 'build') report?.({ what: `building the model graph (${p.what})`, done: p.done, total: p.total });
      else report?.({ what: 'starting the model', done: 0, total: null });
      if (quiet) return;
      if (p.stage === 'download') download.update(p.loadedBytes, p.totalBytes, `${p.file} ${formatBytes(p.loadedBytes)}`);
      else if (p.stage === 'build') {
        building = true;
        build.update(p.done, p.total, p.what);
      } else {
        if (building) build.done('cached for next time');
        building = false;
        if (!starting) process.stderr.write('starting the model…\n');
        starting = true;
      }
    },
  });
  if (!quiet) process.stderr.write(`model ready in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  return model;
}
