/**
 * When does the user's turn end? Spoken questions (espeak-ng) streamed in real time into
 * `asyncvoice serve` over socket.io, half of them whole and half paused mid-question ("what is
 * twelve plus" … 0.5–1.0 s … "five"), once with the turn end decided on the words (the model's
 * P(end of message)) and once on silence alone, in one run. Prints, per setting: how often a paused
 * question was cut off (its turn ended during the pause), and the turn end after a whole question
 * (ms after the voice stopped: median and p90), with the P(end) read at each decision.
 *
 *   npm run bench:turn -- [--model DIR] [--weights fp32] [--utterances 40] [--settings words,silence] [--json]
 *
 * The default model is the one that ships (assets/asyncvoice-arith); its questions are the task's
 * held-out ones, as a recogniser writes them (number words, no punctuation).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Socket } from 'socket.io-client';
import { runTool } from '../src/system/tools.ts';
import { toAsrInput } from '../src/audio/resample.ts';
import { floatToPcm16, parseWav, voicedSpan } from '../src/audio/wav.ts';
import { DEFAULT_MODEL } from '../src/llm/model/default-model.ts';
import type { ServerEvents } from '../src/protocol.ts';
import { Rand, evalProblems } from '../training/task.ts';
import { fmt, median, requireTools, startServe } from './shared.ts';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: DEFAULT_MODEL },
    weights: { type: 'string', default: 'fp32' },
    utterances: { type: 'string', default: '40' },
    settings: { type: 'string', default: 'words,silence' },
    voice: { type: 'string', default: 'en-us+klatt' },
    json: { type: 'boolean', default: false },
  },
});
const log = (s: string) => process.stderr.write(`${s}\n`);
const BIN = resolve(import.meta.dirname, '../bin/asyncvoice.mjs');
const FRAME_SAMPLES = 320; // 20 ms at 16 kHz
const FRAME_MS = 20;
const RATE = 16000;

await requireTools('bench:turn', ['espeak-ng', 'pocketsphinx_continuous']);
const work = mkdtempSync(join(tmpdir(), 'asyncvoice-bench-turn-'));
let server: ChildProcess | null = null;
process.on('exit', () => {
  server?.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});
const env = { ...process.env, ASYNCVOICE_CACHE_DIR: process.env.ASYNCVOICE_CACHE_DIR ?? join(process.cwd(), '.cache', 'bench', 'graphs') };

// 1. The utterances: held-out spoken questions; every other one cut before its last number.
async function say(text: string, name: string): Promise<Float32Array> {
  const wav = join(work, `${name}.wav`);
  await runTool('espeak-ng', ['-v', args.voice!, '-s', '150', '-w', wav, text]);
  const audio = toAsrInput(parseWav(readFileSync(wav), wav));
  const span = voicedSpan(audio);
  if (!span) throw new Error(`no voice in "${text}"`);
  return audio.subarray(span.start, span.end);
}
interface Utterance {
  text: string;
  /** Where it pauses: the words before, the pause, the words after (null: said whole). */
  pause: { before: string; ms: number; after: string } | null;
  audio: Float32Array;
  /** Voiced spans in the audio, ms. */
  voiced: { startMs: number; endMs: number }[];
}
const n = Number(args.utterances);
const r = new Rand(11);
const problems = evalProblems(4 * n).filter((p) => p.spoken && p.kind !== 'story' && / (plus|minus|times) /.test(p.question)).slice(0, n);
const utterances: Utterance[] = [];
for (const [i, p] of problems.entries()) {
  const q = p.question;
  if (i % 2 === 0) {
    const audio = await say(q, `u${i}`);
    utterances.push({ text: q, pause: null, audio, voiced: [{ startMs: 0, endMs: (audio.length / RATE) * 1000 }] });
    continue;
  }
  // Cut right after the operator: "what is twelve plus" | "five" — a question nobody would call finished.
  const m = q.match(/^(.* (?:plus|minus|times))( .+)$/)!;
  const [before, after] = [m[1], m[2].trim()];
  const ms = Math.round(500 + r.next() * 500);
  const a = await say(before, `u${i}a`);
  const b = await say(after, `u${i}b`);
  const gap = Math.round((ms / 1000) * RATE);
  const audio = new Float32Array(a.length + gap + b.length);
  audio.set(a);
  audio.set(b, a.length + gap);
  const aEnd = (a.length / RATE) * 1000;
  utterances.push({ text: q, pause: { before, ms, after }, audio, voiced: [{ startMs: 0, endMs: aEnd }, { startMs: aEnd + ms, endMs: (audio.length / RATE) * 1000 }] });
}
log(`${utterances.length} utterances (${utterances.filter((u) => u.pause).length} paused mid-question for 0.5–1.0 s)`);

interface TurnReport {
  text: string;
  paused: boolean;
  cutOff: boolean;
  /** Turn end after the voice stopped, ms (the service's stamp). */
  turnEndMs: number | null;
  by: string | null;
  pEnd: number | null;
}

async function serveWith(setting: string): Promise<{ socket: Socket; check: string }> {
  const started = await startServe(BIN, ['--model', args.model!, '--weights', args.weights!, '--port', '0', '--turn-end', setting, '--voice', args.voice!, '--max-thinking', '200', '--max-answer', '60'], env);
  server = started.child;
  const socket = started.socket;
  socket.on('metrics', (m: ServerEvents['metrics']) => (newestTurn = Math.max(newestTurn, m.turnId)));
  await new Promise((r) => setTimeout(r, 300));
  const check = started.output().split('\n').find((l) => l.startsWith('end of turn')) ?? '(no check reported)';
  return { socket, check };
}

/** The newest turn the service has reported on: an earlier utterance's last metrics can arrive during the next one. */
let newestTurn = -1;

/** Streams one utterance in real time, then silence until its turn has ended and its answer began; stops the answer. */
async function run(socket: Socket, u: Utterance): Promise<TurnReport> {
  let ended: ServerEvents['metrics'] | null = null;
  let answered = false;
  const turnIds = new Set<number>();
  const before = newestTurn;
  const onMetrics = (m: ServerEvents['metrics']) => {
    if (m.turnId <= before) return; // the previous utterance's turn, reporting late
    turnIds.add(m.turnId);
    if (m.stamps.turnEnd !== undefined && !ended) ended = m;
  };
  const onAnswer = () => (answered = true);
  // Which turns the words went to: a question split at its pause goes to two.
  const onTranscript = (t: ServerEvents['transcript']) => t.turnId > before && turnIds.add(t.turnId);
  socket.on('metrics', onMetrics);
  socket.on('answer', onAnswer);
  socket.on('transcript', onTranscript);
  const lead = Math.round(0.4 * RATE);
  const t0 = performance.now();
  const pauseStartAt = u.pause ? t0 + 400 + u.voiced[0].endMs : Infinity;
  const resumeAt = u.pause ? t0 + 400 + u.voiced[1].startMs : Infinity;
  let endedAt: number | null = null;
  const silence = new Float32Array(FRAME_SAMPLES);
  for (let i = 0; ; i++) {
    const due = t0 + (i + 1) * FRAME_MS;
    await new Promise((res) => setTimeout(res, Math.max(0, due - performance.now())));
    const from = i * FRAME_SAMPLES - lead;
    let frame = from >= 0 && from < u.audio.length ? u.audio.subarray(from, from + FRAME_SAMPLES) : silence;
    if (frame.length < FRAME_SAMPLES) {
      const whole = new Float32Array(FRAME_SAMPLES);
      whole.set(frame);
      frame = whole;
    }
    socket.emit('audio', floatToPcm16(frame));
    if (ended && endedAt === null) endedAt = performance.now();
    const afterVoice = performance.now() - (t0 + 400 + u.voiced.at(-1)!.endMs);
    if ((ended && (answered || afterVoice > 4000)) || afterVoice > 8000) break;
  }
  socket.emit('interrupt', {});
  // Let the answer stop and the service settle before the next one; a turn's metrics come as it ends.
  const settleUntil = performance.now() + 3000;
  await new Promise((res) => setTimeout(res, 800));
  while (!ended && performance.now() < settleUntil) await new Promise((res) => setTimeout(res, 50));
  socket.off('metrics', onMetrics);
  socket.off('answer', onAnswer);
  socket.off('transcript', onTranscript);
  const m = ended as ServerEvents['metrics'] | null;
  // Cut off: the turn end was decided while the user was still in their pause.
  const cutOff = u.pause !== null && endedAt !== null && endedAt < resumeAt && endedAt > pauseStartAt;
  return { text: u.text, paused: u.pause !== null, cutOff: cutOff || (u.pause !== null && turnIds.size > 1), turnEndMs: m?.stamps.turnEnd ?? null, by: m?.turnEnd?.by ?? null, pEnd: m?.turnEnd?.pEnd ?? null };
}

const results: Record<string, { check: string; turns: TurnReport[] }> = {};
for (const setting of args.settings!.split(',')) {
  log(`starting asyncvoice serve --turn-end ${setting}...`);
  const { socket, check } = await serveWith(setting);
  log(check);
  const turns: TurnReport[] = [];
  for (const [i, u] of utterances.entries()) {
    const t = await run(socket, u);
    turns.push(t);
    log(`${setting} ${i + 1}/${utterances.length}: "${u.pause ? `${u.pause.before} … ${u.pause.after}` : u.text}" → ${t.cutOff ? 'CUT OFF' : 'ok'}, turn end ${t.turnEndMs === null ? '—' : `${Math.round(t.turnEndMs)} ms`} (${t.by ?? '?'}, P(end) ${t.pEnd === null ? '—' : t.pEnd.toFixed(2)})`);
  }
  socket.close();
  server!.kill('SIGTERM');
  await new Promise((res) => server!.once('exit', res));
  server = null;
  results[setting] = { check, turns };
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const summary = Object.fromEntries(
  Object.entries(results).map(([s, { check, turns }]) => {
    const paused = turns.filter((t) => t.paused);
    const whole = turns.filter((t) => !t.paused && t.turnEndMs !== null).map((t) => t.turnEndMs!);
    return [s, { check, pausedKeptPct: (100 * paused.filter((t) => !t.cutOff).length) / Math.max(1, paused.length), paused: paused.length, wholeTurnEndMedianMs: whole.length ? median(whole) : NaN, wholeTurnEndP90Ms: whole.length ? pct(whole, 90) : NaN, whole: whole.length, byWords: turns.filter((t) => t.by === 'words').length }];
  }),
);
if (args.json) console.log(JSON.stringify({ model: args.model, weights: args.weights, summary, results }));
else {
  console.log(`\nbench:turn — ${args.model} (${args.weights}), ${utterances.length} spoken questions (${utterances.filter((u) => u.pause).length} paused mid-question 0.5–1.0 s)`);
  console.log(`${'setting'.padEnd(10)}${'paused kept %'.padStart(15)}${'whole: turn end p50 ms'.padStart(24)}${'p90 ms'.padStart(9)}${'ended on words'.padStart(16)}`);
  for (const [s, v] of Object.entries(summary)) console.log(`${s.padEnd(10)}${fmt(v.pausedKeptPct, 0).padStart(15)}${fmt(v.wholeTurnEndMedianMs, 0).padStart(24)}${fmt(v.wholeTurnEndP90Ms, 0).padStart(9)}${String(v.byWords).padStart(16)}`);
  for (const [s, v] of Object.entries(summary)) console.log(`${s}: ${v.check}`);
}
process.exit(0);
