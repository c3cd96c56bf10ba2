import { Option, type Command } from 'commander';
import type { Mode } from '../async-reasoning/events.ts';
import { HAND_BACKS, PROBE_READS, type HandBack, type ProbeReads, type StreamSampling } from '../async-reasoning/turn-config.ts';
import { QWEN3_NON_THINKING, QWEN3_THINKING, advisedSampling } from '../llm/runtime/generation-config.ts';
import type { SamplingOptions } from '../llm/runtime/sampling.ts';
import { floatArg, intArg } from './options.ts';
import { addModelOptions, type ModelCliOptions } from './model-options.ts';

/** The reasoning engine's settings, shared by every command that runs it (ask, chat, serve). */
export interface EngineCliOptions extends ModelCliOptions {
  mode: Mode;
  maxThinking: number;
  maxAnswer: number;
  controlEvery: number;
  safety: boolean;
  probeThreshold: number;
  handBack: HandBack;
  probeReads: ProbeReads;
  probeWhileWriting: boolean;
  greedy: boolean;
  temperature?: number;
  thinkerTemperature?: number;
  writerTemperature?: number;
  topK?: number;
  topP?: number;
  seed: number;
}

const MODES: Mode[] = ['async', 'think', 'nothink'];

export function addEngineOptions(cmd: Command): Command {
  return addModelOptions(cmd)
    .addOption(new Option('--mode <mode>', 'async: think and answer at once; think: think, then answer; nothink: answer at once').choices(MODES).default('async'))
    .option('--max-thinking <n>', 'most thinking tokens per turn', intArg('--max-thinking', 1, 1 << 20), 512)
    .option('--max-answer <n>', 'most answer tokens per turn', intArg('--max-answer', 1, 1 << 20), 512)
    .option('--control-every <n>', 'ask the thinker every n tokens whether the writer may go on', intArg('--control-every', 1, 10_000), 20)
    .option('--safety', 'safety-reasoning prompts: the writer waits until the thinker judged the request', false)
    .option('--probe-threshold <p>', 'release the writer when P(yes) / (P(yes) + P(no)) reaches this', floatArg('--probe-threshold', 0, 1, { minExclusive: true }), 0.5)
    .addOption(new Option('--hand-back <where>', 'the writer hands back to the thinker at each sentence or paragraph end').choices([...HAND_BACKS]).default('sentence'))
    .addOption(new Option('--probe-reads <how>', 'what the control question reads: the answer and thoughts encoded afresh in its own layout (exact; a prefill of them per question), or the shared cache as it stands (cheapest; its K/V were made in other views)').choices([...PROBE_READS]).default('fresh'))
    .option('--no-probe-while-writing', 'ask the control question only while the writer waits (once released, it runs to its next hand-back)')
    .option('--greedy', 'both streams pick the likeliest token (overrides the model folder\'s sampling)', false)
    .option('--temperature <t>', 'both streams (0 = greedy; default: the thinker as the model folder advises, the writer its family\'s non-thinking settings)', floatArg('--temperature', 0, 100))
    .option('--thinker-temperature <t>', 'the thinker alone', floatArg('--thinker-temperature', 0, 100))
    .option('--writer-temperature <t>', 'the writer alone', floatArg('--writer-temperature', 0, 100))
    .option('--top-k <n>', 'both streams: sample from the k likeliest tokens', intArg('--top-k', 1, 1 << 20))
    .option('--top-p <p>', 'both streams: nucleus sampling mass', floatArg('--top-p', 0, 1, { minExclusive: true }))
    .option('--seed <n>', 'sampling seed (a seeded turn repeats token for token)', intArg('--seed', 0, 2 ** 32 - 1), 0);
}

/**
 * Each stream's sampling: the thinker as the model folder's generation_config.json advises (else
 * Qwen3's published thinking settings), the writer with the published non-thinking ones (greedy
 * where the folder advises greedy); flags override; --greedy is greedy throughout.
 */
export function streamSampling(o: EngineCliOptions, modelDir?: string): StreamSampling {
  if (o.greedy) return { thinker: { temperature: 0 }, writer: { temperature: 0 } };
  const advised = modelDir ? advisedSampling(modelDir) : null;
  const greedyModel = advised?.temperature === 0;
  const flags = (t: number | undefined): SamplingOptions => ({
    ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
    ...(t !== undefined ? { temperature: t } : {}),
    ...(o.topK !== undefined ? { topK: o.topK } : {}),
    ...(o.topP !== undefined ? { topP: o.topP } : {}),
    seed: o.seed,
  });
  return {
    thinker: { ...(advised ?? QWEN3_THINKING), ...flags(o.thinkerTemperature) },
    writer: { ...(greedyModel ? { temperature: 0 } : QWEN3_NON_THINKING), ...flags(o.writerTemperature) },
  };
}

/** The CLI's engine flags as engine options (`modelDir`: a local folder whose generation_config.json advises the sampling). */
export function engineSettings(o: EngineCliOptions, modelDir?: string) {
  return {
    safety: o.safety,
    controlEvery: o.controlEvery,
    maxThinkingTokens: o.maxThinking,
    maxAnswerTokens: o.maxAnswer,
    probeThreshold: o.probeThreshold,
    handBack: o.handBack,
    probeReads: o.probeReads,
    probeWhileWriting: o.probeWhileWriting,
    sampling: streamSampling(o, modelDir),
  };
}
