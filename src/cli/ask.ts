import { createInterface } from 'node:readline';
import { Option, type Command } from 'commander';
import { AsyncReasoningEngine } from '../async-reasoning/engine.ts';
import type { EngineEvent, Mode } from '../async-reasoning/events.ts';
import { SpeechDelayObserver } from '../async-reasoning/speech-delay.ts';
import { HAND_BACKS, type HandBack, type StreamSampling } from '../async-reasoning/turn-config.ts';
import { QWEN3_NON_THINKING, QWEN3_THINKING, advisedSampling } from '../llm/runtime/generation-config.ts';
import type { SamplingOptions } from '../llm/runtime/sampling.ts';
import { Tokenizer } from '../llm/model/tokenizer.ts';
import { defaultTtsEngine } from '../tts/engine.ts';
import { floatArg, intArg } from './options.ts';
import { checkWritable, speakText } from './speech.ts';
import { HeldOutput, liveView } from './live-view.ts';
import { addModelOptions, loadModelWithProgress, type ModelCliOptions } from './load-model.ts';

/** The reasoning engine's settings, shared by every command that runs it (ask, chat, serve). */
export interface EngineCliOptions extends ModelCliOptions {
  mode: Mode;
  maxThinking: number;
  maxAnswer: number;
  controlEvery: number;
  safety: boolean;
  probeThreshold: number;
  handBack: HandBack;
  probeWhileWriting: boolean;
  greedy: boolean;
  temperature?: number;
  thinkerTemperature?: number;
  writerTemperature?: number;
  topK?: number;
  topP?: number;
  seed: number;
}

interface AskCliOptions extends EngineCliOptions {
  json: boolean;
  plain: boolean;
  speak?: string | true;
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
    probeWhileWriting: o.probeWhileWriting,
    sampling: streamSampling(o, modelDir),
  };
}

async function makeEngine(o: AskCliOptions, quiet: boolean, keepHistory: boolean) {
  const model = await loadModelWithProgress(o, quiet);
  const tokenizer = await Tokenizer.fromFolder(model.dir);
  const engine = new AsyncReasoningEngine({ lm: model.lm, tokenizer, keepHistory, ...engineSettings(o, model.dir) });
  return { model, engine };
}

const round = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);

export function registerAsk(program: Command): void {
  const ask = program.command('ask').description('ask one question; the answer starts while the thinking goes on').argument('<question>', 'the question');
  addEngineOptions(ask)
    .option('--json', 'print one JSON object at the end', false)
    .option('--plain', 'print the answer alone as it streams (no thinking, no markers)', false)
    .option('--speak [file.wav]', 'then say the answer: into a WAV file, or aloud without one')
    .action(async (question: string, o: AskCliOptions) => {
      if (typeof o.speak === 'string') checkWritable(o.speak, '--speak');
      const { model, engine } = await makeEngine(o, o.json, false); // one question: no history to keep
      try {
        const turn = engine.startTurn(question, { mode: o.mode });
        const events: EngineEvent[] = [];
        const speech = new SpeechDelayObserver();
        const view = liveView({ write: (s) => process.stdout.write(s), tty: process.stdout.isTTY === true, columns: process.stdout.columns, plain: o.plain });
        for await (const e of turn.events) {
          if (!o.json) view.observe(e); // the live view totals the delay itself
          else {
            speech.observe(e);
            events.push(e);
          }
        }
        const r = await turn.result;
        await turn.settled();
        if (o.json) {
          const metrics = { ...r.metrics, totalDelayMs: speech.totalDelayMs };
          process.stdout.write(
            JSON.stringify({
              mode: r.mode,
              answer: r.answer,
              thinking: r.thinking,
              metrics: { ...metrics, firstAnswerTokenMs: round(metrics.firstAnswerTokenMs), totalDelayMs: round(metrics.totalDelayMs) },
              events: events.map((e) => (e.type === 'done' ? { type: 'done', reason: e.reason, step: e.step, tMs: round(e.tMs) } : { ...e, tMs: round(e.tMs) })),
            }) + '\n',
          );
        }
        if (o.speak && r.answer.trim()) await speakText(r.answer, { engine: defaultTtsEngine(), out: typeof o.speak === 'string' ? o.speak : undefined, quiet: o.json });
      } finally {
        await model.lm.close();
      }
    });

  const chat = program.command('chat').description('multi-turn text chat; type /interrupt while an answer streams to cut it off, /quit to leave');
  addEngineOptions(chat).action(async (o: AskCliOptions) => {
    const { model, engine } = await makeEngine(o, false, true);
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true });
    const out = new HeldOutput((s) => process.stdout.write(s));
    const view = liveView({ write: out.write, tty: process.stdout.isTTY === true, columns: process.stdout.columns });
    let turn: ReturnType<typeof engine.startTurn> | null = null;
    let awaitingInterruptText = false;
    let heard = 0;
    const prompt = () => process.stdout.write('\nyou> ');
    prompt();
    const lines = rl[Symbol.asyncIterator]();
    const pump = async (t: NonNullable<typeof turn>) => {
      for await (const e of t.events) {
        if (e.type === 'answer') heard += e.text.length;
        if (e.type === 'interrupted') heard = e.heardText.length;
        view.observe(e);
      }
      await t.settled().catch(() => undefined);
      if (turn === t) turn = null;
      if (!awaitingInterruptText) prompt();
    };
    for (;;) {
      const next = await lines.next();
      if (next.done) break;
      const line = next.value.trim();
      if (line === '/quit') break;
      if (line === '/interrupt') {
        if (turn) {
          // In a text chat everything printed so far counts as heard.
          turn.interrupt({ heardChars: heard });
          awaitingInterruptText = true;
          // What still streams waits until the user has typed their line.
          view.settle();
          out.hold();
          process.stdout.write('(say what you want to add) you> ');
        }
        continue;
      }
      if (awaitingInterruptText && line) out.release();
      if (!line) continue;
      if (turn && awaitingInterruptText && turn.acceptsInput) {
        turn.addUserInput(line);
        turn.endUserInput();
        awaitingInterruptText = false;
        continue;
      }
      awaitingInterruptText = false; // a baseline's interrupted turn has ended: this line is the next turn
      if (turn?.acceptsInput) {
        turn.addUserInput(line);
        continue;
      }
      heard = 0;
      turn = engine.startTurn(line, { mode: o.mode });
      void pump(turn);
    }
    turn?.abort();
    rl.close();
    await model.lm.close();
  });
}
