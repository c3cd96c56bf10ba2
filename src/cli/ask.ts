import { createInterface } from 'node:readline';
import { Option, type Command } from 'commander';
import { AsyncReasoningEngine } from '../async-reasoning/engine.ts';
import type { EngineEvent, Mode } from '../async-reasoning/events.ts';
import { SpeechDelayObserver } from '../async-reasoning/speech-delay.ts';
import { Tokenizer } from '../llm/tokenizer.ts';
import { floatArg, intArg } from './options.ts';
import { addModelOptions, loadModelWithProgress, type ModelCliOptions } from './load-model.ts';

/** The reasoning engine's settings, shared by every command that runs it (ask, chat, serve). */
export interface EngineCliOptions extends ModelCliOptions {
  mode: Mode;
  maxThinking: number;
  maxAnswer: number;
  controlEvery: number;
  safety: boolean;
  temperature: number;
  seed: number;
}

interface AskCliOptions extends EngineCliOptions {
  json: boolean;
}

const MODES: Mode[] = ['async', 'think', 'nothink'];

export function addEngineOptions(cmd: Command): Command {
  return addModelOptions(cmd)
    .addOption(new Option('--mode <mode>', 'async: think and answer at once; think: think, then answer; nothink: answer at once').choices(MODES).default('async'))
    .option('--max-thinking <n>', 'most thinking tokens per turn', intArg('--max-thinking', 1), 512)
    .option('--max-answer <n>', 'most answer tokens per turn', intArg('--max-answer', 1), 512)
    .option('--control-every <n>', 'ask the thinker every n tokens whether the writer may go on', intArg('--control-every', 1), 20)
    .option('--safety', 'safety-reasoning prompts: the writer waits until the thinker judged the request', false)
    .option('--temperature <t>', '0 = greedy', floatArg('--temperature', 0), 0)
    .option('--seed <n>', 'sampling seed', intArg('--seed'), 0);
}

/** The CLI's engine flags as engine options. */
export function engineSettings(o: EngineCliOptions) {
  return {
    safety: o.safety,
    controlEvery: o.controlEvery,
    maxThinkingTokens: o.maxThinking,
    maxAnswerTokens: o.maxAnswer,
    sampling: { temperature: o.temperature, seed: o.seed },
  };
}

async function makeEngine(o: AskCliOptions, quiet: boolean, keepHistory: boolean) {
  const model = await loadModelWithProgress(o, quiet);
  const tokenizer = await Tokenizer.fromFolder(model.dir);
  const engine = new AsyncReasoningEngine({ lm: model.lm, tokenizer, keepHistory, ...engineSettings(o) });
  return { model, engine };
}

/**
 * Live terminal view: thinking dim, the answer bright, state changes marked. On a terminal the
 * colours tell the streams apart; in a pipe, a label marks each switch of stream.
 */
function liveView(write: (s: string) => void, color: boolean) {
  const dim = color ? '\x1b[2m' : '';
  const bright = color ? '\x1b[1m' : '';
  const mark = color ? '\x1b[36m' : '';
  const reset = color ? '\x1b[0m' : '';
  let current: 'thinking' | 'answer' | null = null;
  let speech = new SpeechDelayObserver();
  return (e: EngineEvent) => {
    speech.observe(e);
    if (e.type === 'thinking' || e.type === 'answer') {
      if (current !== e.type && !color) write(`\n[${e.type}] `);
      current = e.type;
      write(`${e.type === 'thinking' ? dim : bright}${e.text}${reset}`);
    } else if (e.type === 'state') {
      write(`\n${mark}[state ${e.from} → ${e.to}: ${e.reason} @ ${e.tMs.toFixed(0)} ms]${reset}`);
      current = null;
    } else if (e.type === 'control') {
      write(`\n${mark}[control: ${e.decision} (P(yes)=${e.pYes.toExponential(2)}, P(no)=${e.pNo.toExponential(2)})]${reset}`);
      current = null;
    } else if (e.type === 'interrupted') {
      write(`\n${mark}[interrupted: kept ${e.keptTokens} tokens, trimmed ${e.trimmedTokens}]${reset}`);
      current = null;
    } else if (e.type === 'done') {
      const m = e.result.metrics;
      write(
        `\n${mark}[done: ${e.reason}; first answer token ${m.firstAnswerTokenMs === null ? '—' : `${m.firstAnswerTokenMs.toFixed(0)} ms (step ${m.firstAnswerTokenStep})`}; total delay ${speech.totalDelayMs.toFixed(0)} ms]${reset}\n`,
      );
      speech = new SpeechDelayObserver();
    }
  };
}

const round = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);

export function registerAsk(program: Command): void {
  const ask = program.command('ask').description('ask one question; the answer starts while the thinking goes on').argument('<question>', 'the question');
  addEngineOptions(ask)
    .option('--json', 'print one JSON object at the end', false)
    .action(async (question: string, o: AskCliOptions) => {
      const { model, engine } = await makeEngine(o, o.json, false); // one question: no history to keep
      try {
        const turn = engine.startTurn(question, { mode: o.mode });
        const events: EngineEvent[] = [];
        const speech = new SpeechDelayObserver();
        const view = liveView((s) => process.stdout.write(s), process.stdout.isTTY === true);
        for await (const e of turn.events) {
          if (!o.json) view(e); // the live view totals the delay itself
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
      } finally {
        await model.lm.close();
      }
    });

  const chat = program.command('chat').description('multi-turn text chat; type /interrupt while an answer streams to cut it off, /quit to leave');
  addEngineOptions(chat).action(async (o: AskCliOptions) => {
    const { model, engine } = await makeEngine(o, false, true);
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true });
    const view = liveView((s) => process.stdout.write(s), process.stdout.isTTY === true);
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
        view(e);
      }
      await t.settled().catch(() => undefined);
      if (turn === t) turn = null;
      prompt();
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
          process.stdout.write('\n(say what you want to add) you> ');
        }
        continue;
      }
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
