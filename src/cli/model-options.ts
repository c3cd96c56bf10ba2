import { availableParallelism } from 'node:os';
import { Option, type Command } from 'commander';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../backend/providers.ts';
import { HEAD_FORMATS, KV_FORMATS, PREFILL_WEIGHTS, WEIGHT_FORMATS, type HeadFormat, type KvFormat, type PrefillWeights, type WeightFormat } from '../llm/graph/contract.ts';
import { DEFAULT_MODEL, shippedModel } from '../llm/model/default-model.ts';
import { ModelSourceError } from '../errors.ts';
import { intArg } from './options.ts';

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
