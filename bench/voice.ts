/**
 * Voice to voice in real time, the way a user gets it: spoken questions (espeak-ng) streamed in
 * 20 ms frames at real-time pace into `asyncvoice serve` over socket.io, speech chunks "played"
 * back at their real durations with the player's start/end/stopped reports, per mode. Prints, per
 * mode, medians over the questions: listening lag behind the microphone (p50/p95 over frames), turn
 * end, final transcript, first thinking and answer token, first chunk ready and first audio (all
 * after the end of the voice), total delay, when the writer was released, and the thinker's ms/step
 * while the user speaks and while silent, against a single-stream `generate` step measured first
 * in the same run.
 *
 *   npm run bench:voice -- [--model DIR] [--preset qwen3-0.6b] [--weights int4] [--modes async,think,nothink]
 *                          [--questions 3] [--max-thinking 96] [--max-answer 40] [--threads N] [--json]
 *
 * BENCH_VOICE_DEBUG=1 also prints each turn's stamps and the events the client saw, in ms from the end of the voice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Socket } from 'socket.io-client';
import { runTool } from '../src/system/tools.ts';
import { toAsrInput } from '../src/audio/resample.ts';
import { floatToPcm16, parseWav, voicedSpan } from '../src/audio/wav.ts';
import { TURN_END_SILENCE_MS } from '../src/pipeline/conversation.ts';
import type { ServerEvents } from '../src/protocol.ts';
import { benchModel, fmt, median, requireTools, startServe } from './shared.ts';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    preset: { type: 'string', default: 'qwen3-0.6b' },
    weights: { type: 'string', default: 'int4' },
    modes: { type: 'string', default: 'async,think,nothink' },
    questions: { type: 'string', default: '3' },
    'max-thinking': { type: 'string', default: '96' },
    'max-answer': { type: 'string', default: '40' },
    threads: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const log = (s: string) => process.stderr.write(`${s}\n`);
const BIN = resolve(import.meta.dirname, '../bin/asyncvoice.mjs');
const FRAME_SAMPLES = 320; // 20 ms at 16 kHz
const FRAME_MS = 20;

await requireTools('bench:voice', ['espeak-ng', 'sox', 'pocketsphinx_continuous']);
const work = mkdtempSync(join(tmpdir(), 'asyncvoice-bench-voice-'));
let server: ChildProcess | null = null;
process.on('exit', () => {
  server?.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});
const model = args.model ?? benchModel(args.preset!);
const env = { ...process.env, ASYNCVOICE_CACHE_DIR: process.env.ASYNCVOICE_CACHE_DIR ?? join(process.cwd(), '.cache', 'bench', 'graphs') };
const modelArgs = ['--model', model, '--weights', args.weights!, ...(args.threads ? ['--threads', args.threads] : [])];

/** Runs the CLI; resolves with stdout, rejects with stderr. */
function cli(argv: string[]): Promise<string> {
  return new Promise((res, rej) => {
    const c = spawn(process.execPath, [BIN, ...argv], { env });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => {
      err += d;
      process.stderr.write(d);
    });
    c.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`asyncvoice ${argv[0]} exited ${code}: ${err.slice(-500)}`))));
  });
}

// 1. The single-stream step to compare with, on the same model, weights and threads (this also builds the graph).
log('measuring a single-stream generate step...');
const gen = JSON.parse(await cli(['generate', ...modelArgs, '--prompt', 'Tell me about the history of the sea and the ships on it.', '--max-tokens', '48', '--json']));
const generateStepMs: number = gen.timings.decodeMsPerToken;

// 2. The questions, as 16 kHz mono.
/** Short and long, as people ask: the long ones give the thinker something to do while they are spoken. */
const BENCH_QUESTIONS = [
  'what is seven plus five',
  'can you explain in simple words why the sky looks blue during the day but red at sunset',
  'how many legs does a spider have',
  'if a train leaves at three and travels for two hours at sixty miles an hour how far does it go',
  'what is the capital of france',
];
const nQuestions = Math.min(BENCH_QUESTIONS.length, Number(args.questions));
/** Where the voice itself starts and ends in a 16 kHz recording, in ms (espeak-ng pads its output with silence). */
function voicedSpanMs(audio: Float32Array): { startMs: number; endMs: number } {
  const span = voicedSpan(audio);
  if (!span) throw new Error('a bench question has no voice in it');
  return { startMs: (span.start / 16000) * 1000, endMs: (span.end / 16000) * 1000 };
}
const questions: { text: string; audio: Float32Array; voiced: { startMs: number; endMs: number } }[] = [];
for (const text of BENCH_QUESTIONS.slice(0, nQuestions)) {
  const wav = join(work, `q${questions.length}.wav`);
  await runTool('espeak-ng', ['-v', 'en-us+klatt', '-s', '150', '-w', wav, text]);
  const audio = toAsrInput(parseWav(readFileSync(wav), wav));
  questions.push({ text, audio, voiced: voicedSpanMs(audio) });
}

// 3. The service, as a user starts it.
log('starting asyncvoice serve...');
const started = await startServe(BIN, [...modelArgs, '--port', '0', '--max-thinking', args['max-thinking']!, '--max-answer', args['max-answer']!], env);
server = started.child;
const socket: Socket = started.socket;
log('connected; the model is ready');

/** A player that keeps real time: chunks one after another, each reported as it starts, ends or is cut. */
class Player {
  private queue: ServerEvents['speech-chunk'][] = [];
  private current: { chunk: ServerEvents['speech-chunk']; startedAt: number; timer: NodeJS.Timeout } | null = null;
  constructor(private readonly s: Socket) {}
  play(c: ServerEvents['speech-chunk']): void {
    this.queue.push(c);
    if (!this.current) this.next();
  }
  private next(): void {
    const chunk = this.queue.shift();
    if (!chunk) return void (this.current = null);
    this.s.emit('playback', { chunkId: chunk.chunkId, event: 'start' });
    const timer = setTimeout(() => {
      this.s.emit('playback', { chunkId: chunk.chunkId, event: 'end' });
      this.next();
    }, chunk.durationMs);
    this.current = { chunk, startedAt: performance.now(), timer };
  }
  stop(): void {
    this.queue = [];
    const c = this.current;
    if (!c) return;
    clearTimeout(c.timer);
    const share = Math.min(1, (performance.now() - c.startedAt) / c.chunk.durationMs);
    this.s.emit('playback', { chunkId: c.chunk.chunkId, event: 'stopped', heardChars: Math.floor(share * c.chunk.text.length) });
    this.current = null;
  }
  get idle(): boolean {
    return !this.current && !this.queue.length;
  }
}
const player = new Player(socket);
socket.on('speech-chunk', (c: ServerEvents['speech-chunk']) => player.play(c));
socket.on('stop-audio', () => player.stop());

interface TurnFigures {
  question: string;
  lagMs: number[];
  metrics: ServerEvents['metrics'];
  writerReleasedMs: number | null;
  thinkerStepMs: { speaking: number[]; silent: number[]; silentAlone: number[] };
}

/** When the last frame was due: the microphone's clock, across questions. */
let micClock = 0;

/** Streams one question in real time (with the silence a live microphone goes on sending) and waits for its answer to be said. */
async function ask(q: (typeof questions)[number]): Promise<TurnFigures> {
  const lagMs: number[] = [];
  let metrics: ServerEvents['metrics'] | null = null;
  let turnId = -1;
  let voice = { start: Infinity, end: Infinity }; // on this process's clock
  let lastThinkingAt = -1;
  let writerReleasedAt: number | null = null;
  const steps = { speaking: [] as number[], silent: [] as number[], silentAlone: [] as number[] };
  let writing = false;
  const onLag = (l: ServerEvents['listening']) => lagMs.push(...l.lagMs);
  const onMetrics = (m: ServerEvents['metrics']) => {
    if (turnId < 0 || m.turnId === turnId) metrics = m;
    turnId = m.turnId;
  };
  const onThinking = () => {
    const now = performance.now();
    if (lastThinkingAt >= 0) {
      const dt = now - lastThinkingAt;
      if (now >= voice.start && now <= voice.end) steps.speaking.push(dt);
      else {
        steps.silent.push(dt);
        if (!writing) steps.silentAlone.push(dt);
      }
    }
    lastThinkingAt = now;
  };
  const onState = (s: ServerEvents['state']) => {
    writing = s.to === 'thinker_and_writer' || s.to === 'writer_only';
    if (writing) writerReleasedAt ??= performance.now();
  };
  const trace: string[] = [];
  const traceAny = (event: string, payload: unknown) => {
    if (process.env.BENCH_VOICE_DEBUG && !['listening', 'audio', 'metrics', 'speech-chunk'].includes(event) && trace.length < 60) trace.push(`${(performance.now() - voice.end).toFixed(0)} ${event} ${JSON.stringify(payload).slice(-120)}`);
  };
  socket.onAny(traceAny);
  socket.on('listening', onLag);
  socket.on('metrics', onMetrics);
  socket.on('thinking', onThinking);
  socket.on('state', onState);
  const silence = new Float32Array(FRAME_SAMPLES);
  const lead = Math.round(0.5 * 16000);
  const total = lead + q.audio.length;
  // A live microphone never pauses: this question's frames follow the last one's without a gap.
  const t0 = Math.max(micClock, performance.now() - FRAME_MS);
  // The service stamps times from where the voice ends, not the recording: so does this clock.
  voice = { start: t0 + 500 + q.voiced.startMs, end: t0 + 500 + q.voiced.endMs };
  const deadline = voice.end + 60_000;
  for (let i = 0; ; i++) {
    const due = t0 + (i + 1) * FRAME_MS;
    await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
    const from = i * FRAME_SAMPLES;
    let frame = from >= lead && from < total ? q.audio.subarray(from - lead, from - lead + FRAME_SAMPLES) : silence;
    if (frame.length < FRAME_SAMPLES) {
      const whole = new Float32Array(FRAME_SAMPLES);
      whole.set(frame);
      frame = whole;
    }
    socket.emit('audio', floatToPcm16(frame));
    micClock = due;
    const m = metrics as ServerEvents['metrics'] | null;
    if ((m?.done && player.idle && performance.now() > voice.end + 1000) || performance.now() > deadline) break;
  }
  socket.offAny(traceAny);
  if (trace.length) log(trace.join('\n'));
  socket.off('listening', onLag);
  socket.off('metrics', onMetrics);
  socket.off('thinking', onThinking);
  socket.off('state', onState);
  if (!metrics) throw new Error(`no metrics for "${q.text}" (was it heard?)`);
  const m = metrics as ServerEvents['metrics'];
  // The turn end on this clock: the voice's end plus the service's turn-end stamp.
  const turnEndAt = voice.end + (m.stamps.turnEnd ?? 0);
  return { question: q.text, lagMs, metrics: m, writerReleasedMs: writerReleasedAt === null ? null : writerReleasedAt - turnEndAt, thinkerStepMs: steps };
}

const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : NaN);
const med = (xs: (number | null | undefined)[]) => {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length ? median(v) : NaN;
};

const report: Record<string, Record<string, number>> = {};
const perTurn: { mode: string; question: string; stamps: ServerEvents['metrics']['stamps']; totalDelayMs: number | null; writerReleasedMs: number | null }[] = [];
for (const mode of args.modes!.split(',')) {
  socket.emit('settings', { mode });
  const turns: TurnFigures[] = [];
  for (const q of questions) {
    log(`${mode}: "${q.text}"`);
    const t = await ask(q);
    turns.push(t);
    perTurn.push({ mode, question: q.text, stamps: t.metrics.stamps, totalDelayMs: t.metrics.totalDelayMs, writerReleasedMs: t.writerReleasedMs });
    if (process.env.BENCH_VOICE_DEBUG) log(JSON.stringify(perTurn.at(-1)));
  }
  const st = (k: keyof ServerEvents['metrics']['stamps']) => med(turns.map((t) => t.metrics.stamps[k]));
  const allLag = turns.flatMap((t) => t.lagMs);
  report[mode] = {
    vadLagP50Ms: pct(allLag, 50),
    vadLagP95Ms: pct(allLag, 95),
    firstPartialMs: st('firstPartial'),
    turnEndMs: st('turnEnd'),
    finalTranscriptMs: st('finalTranscript'),
    finalAfterTurnEndMs: med(turns.map((t) => (t.metrics.stamps.finalTranscript ?? NaN) - (t.metrics.stamps.turnEnd ?? NaN))),
    firstThinkingTokenMs: st('firstThinkingToken'),
    firstAnswerTokenMs: st('firstAnswerToken'),
    firstChunkReadyMs: st('firstChunkReady'),
    firstAudioMs: st('firstAudioStart'),
    firstAnswerToAudioMs: med(turns.map((t) => (t.metrics.stamps.firstAudioStart ?? NaN) - (t.metrics.stamps.firstAnswerToken ?? NaN))),
    totalDelayMs: med(turns.map((t) => t.metrics.totalDelayMs)),
    writerReleasedAfterTurnEndMs: med(turns.map((t) => t.writerReleasedMs)),
    thinkerStepSpeakingMs: med(turns.flatMap((t) => t.thinkerStepMs.speaking)),
    thinkerStepSilentMs: med(turns.flatMap((t) => t.thinkerStepMs.silent)),
    thinkerStepSilentAloneMs: med(turns.flatMap((t) => t.thinkerStepMs.silentAlone)),
    generateStepMs,
  };
}
socket.close();
server.kill('SIGTERM');

if (args.json) {
  console.log(JSON.stringify({ model, weights: args.weights, silenceMs: TURN_END_SILENCE_MS, questions: nQuestions, modes: report, turns: perTurn }));
} else {
  const rows: [string, string][] = [
    ['vadLagP50Ms', 'listening lag behind the mic, p50 over frames'],
    ['vadLagP95Ms', 'listening lag behind the mic, p95 over frames'],
    ['firstPartialMs', 'first partial transcript'],
    ['turnEndMs', `turn end (silence setting ${TURN_END_SILENCE_MS} ms)`],
    ['finalTranscriptMs', 'final transcript'],
    ['finalAfterTurnEndMs', '  … after turn end'],
    ['firstThinkingTokenMs', 'first thinking token'],
    ['firstAnswerTokenMs', 'first answer token'],
    ['writerReleasedAfterTurnEndMs', 'writer released, after turn end'],
    ['firstChunkReadyMs', 'first speech chunk ready'],
    ['firstAudioMs', 'first audio (voice to voice)'],
    ['firstAnswerToAudioMs', '  … after the first answer token'],
    ['totalDelayMs', 'total delay'],
    ['thinkerStepSpeakingMs', 'thinker ms/step while the user speaks'],
    ['thinkerStepSilentMs', 'thinker ms/step while silent'],
    ['thinkerStepSilentAloneMs', '  … of which the writer not yet released'],
  ];
  const modes = Object.keys(report);
  console.log(`\nbench:voice — ${model} (${args.weights}), ${nQuestions} spoken questions, medians; times in ms after the end of the user's voice`);
  console.log(`single-stream generate step: ${fmt(generateStepMs)} ms/token\n`);
  console.log(`${''.padEnd(48)}${modes.map((m) => m.padStart(10)).join('')}`);
  for (const [k, label] of rows) console.log(`${label.padEnd(48)}${modes.map((m) => fmt(report[m][k], 0).padStart(10)).join('')}`);
  console.log(`${'thinker silent step / generate step'.padEnd(48)}${modes.map((m) => fmt(report[m].thinkerStepSilentMs / generateStepMs, 2).padStart(10)).join('')}`);
  console.log(`${'  … writer not yet released / generate step'.padEnd(48)}${modes.map((m) => fmt(report[m].thinkerStepSilentAloneMs / generateStepMs, 2).padStart(10)).join('')}`);
  console.log(`${'thinker speaking step / silent step'.padEnd(48)}${modes.map((m) => fmt(report[m].thinkerStepSpeakingMs / report[m].thinkerStepSilentMs, 2).padStart(10)).join('')}`);
}
process.exit(0);
