import { createInterface } from 'node:readline';
import { AsyncReasoningEngine } from '../async-reasoning/engine.ts';
import type { EngineEvent } from '../async-reasoning/events.ts';
import { SpeechDelayObserver } from '../async-reasoning/speech-delay.ts';
import { Tokenizer } from '../llm/model/tokenizer.ts';
import { defaultTtsEngine } from '../tts/engine.ts';
import { checkWritable, speakText } from './speech.ts';
import { HeldOutput, liveView } from './live-view.ts';
import { engineSettings, type EngineCliOptions } from './engine-options.ts';
import { loadModelWithProgress } from './load-model.ts';

interface AskCliOptions extends EngineCliOptions {
  json: boolean;
  plain: boolean;
  speak?: string | true;
}

async function makeEngine(o: AskCliOptions, quiet: boolean, keepHistory: boolean) {
  const model = await loadModelWithProgress(o, quiet);
  const tokenizer = await Tokenizer.fromFolder(model.dir);
  const engine = new AsyncReasoningEngine({ lm: model.lm, tokenizer, keepHistory, ...engineSettings(o, model.dir) });
  return { model, engine };
}

const round = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);

/** One question: the thinking and the answer as they stream (or one JSON object), then maybe spoken. */
export async function runAsk(question: string, o: AskCliOptions): Promise<void> {
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
}

/** A multi-turn text chat on stdin/stdout. */
export async function runChat(o: AskCliOptions): Promise<void> {
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
}
