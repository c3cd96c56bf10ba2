import { createInterface } from 'node:readline';
import { Option, type Command } from 'commander';
import { AsyncReasoningEngine } from '../async-reasoning/engine.ts';
import type { EngineEvent, Mode } from '../async-reasoning/events.ts';
import { SpeechDelayObserver } from '../async-reasoning/speech-delay.ts';
import { Tokenizer } from '../llm/tokenizer.ts';
import { floatArg, intArg } from './options.ts';
import { HeldOutput, liveView } from './live-view.ts';
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
  plain: boolean;
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

const round = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);

export function registerAsk(program: Command): void {
  const ask = program.command('ask').description('ask one question; the answer starts while the thinking goes on').argument('<question>', 'the question');
  addEngineOptions(ask)
    .option('--json', 'print one JSON object at the end', false)
    .option('--plain', 'print the answer alone as it streams (no thinking, no markers)', false)
    .action(async (question: string, o: AskCliOptions) => {
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
