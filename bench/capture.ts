/**
 * Speech recognition through the renderer's real capture path, per microphone setting and room:
 * espeak-ng questions (as recorded, and with steady pink noise mixed in) played into headless
 * Chromium's fake microphone, captured by renderer/audio.js (the browser's audio processing, then
 * the 16 kHz AudioWorklet), recognised by pocketsphinx, scored against the same WAV recognised
 * straight from the file. All figures come from this one run.
 *
 *   npm run bench:capture
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { PocketsphinxRecognizer } from '../src/asr/pocketsphinx.ts';
import { SileroVad } from '../src/asr/vad.ts';
import { transcribeAudio } from '../src/asr/transcribe.ts';
import { runTool } from '../src/system/tools.ts';
import { durationMs, parseWav, pcm16ToFloat, type PcmAudio } from '../src/audio/wav.ts';
import { staticFiles } from '../src/server/serve.ts';
import { wordErrors } from '../src/asr/word-errors.ts';
import { SPOKEN_QUESTIONS } from './spoken-questions.ts';
import { fmt, requireTools, spokenQuestionsWav } from './shared.ts';

const QUESTIONS = SPOKEN_QUESTIONS;
type Setting = { echoCancellation: boolean; noiseSuppression: boolean; autoGainControl?: boolean };
const SETTINGS: Record<string, Setting> = {
  'speakers: echo + noise suppression (default)': { echoCancellation: true, noiseSuppression: true },
  'headphones: no processing': { echoCancellation: false, noiseSuppression: false },
  'echo cancellation only': { echoCancellation: true, noiseSuppression: false },
  'noise suppression only': { echoCancellation: false, noiseSuppression: true },
  'browser defaults (echo + noise + gain)': { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
};
/** Rooms: as recorded, and with steady pink noise (a fan, an air conditioner) mixed in. */
const ROOMS = { quiet: 0, noisy: 0.06 };

await requireTools('bench:capture', ['espeak-ng', 'sox', 'pocketsphinx_continuous', 'chromium']);
const dir = mkdtempSync(join(tmpdir(), 'asyncvoice-bench-capture-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const micFile = await spokenQuestionsWav(dir);
const mic = parseWav(readFileSync(micFile), 'mic.wav');
const micMs = durationMs(mic);
const roomFiles: Record<string, string> = { quiet: micFile };
const rms = (x: Float32Array) => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / Math.max(1, x.length));
const voiced = mic.channels[0].filter((v) => Math.abs(v) > 0.02);
const snrDb: Record<string, number> = { quiet: Infinity };
for (const [room, level] of Object.entries(ROOMS)) {
  if (!level) continue;
  const noise = join(dir, `${room}-noise.wav`);
  // -R: the same noise every run, so runs differ only in what the browser does.
  await runTool('sox', ['-R', '-n', '-r', '48000', '-c', '1', '-b', '16', noise, 'synth', String(micMs / 1000), 'pinknoise', 'vol', String(level)]);
  roomFiles[room] = join(dir, `${room}.wav`);
  await runTool('sox', ['-m', micFile, noise, roomFiles[room]]);
  snrDb[room] = 20 * Math.log10(rms(voiced) / rms(parseWav(readFileSync(noise), 'noise').channels[0]));
}

const vad = await SileroVad.load();
const recognizer = new PocketsphinxRecognizer();
const reference = QUESTIONS.join(' ');
const score = async (audio: PcmAudio) => {
  const { text } = await transcribeAudio(audio, vad, recognizer);
  return { text, ...wordErrors(reference, text) };
};

// Only what the capture code needs, from the same files the app serves.
const files = staticFiles();
const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  if (path === '/') return void res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>capture</title>');
  const f = path === '/audio.js' || path === '/capture-worklet.js' ? files[path] : undefined;
  if (!f) return void res.writeHead(404).end();
  res.writeHead(200, { 'Content-Type': f.type }).end(readFileSync(f.file));
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;

const rows: { room: string; name: string; wer: number; errors: number; words: number; text: string }[] = [];
for (const [room, file] of Object.entries(roomFiles)) {
  const direct = await score(parseWav(readFileSync(file), room));
  rows.push({ room, name: 'the WAV file itself (no browser)', wer: direct.errors / direct.words, ...direct });
  for (const [name, setting] of Object.entries(SETTINGS)) {
    process.stderr.write(`capturing ${(micMs / 1000).toFixed(0)} s through Chromium, ${room} room: ${name}...\n`);
    const s = await score(await capture(file, setting));
    rows.push({ room, name, wer: s.errors / s.words, ...s });
  }
}
server.close();
await recognizer.close();

console.log(`\nCapture-path recognition — ${QUESTIONS.length} espeak-ng questions (${(micMs / 1000).toFixed(1)} s), pocketsphinx, one run`);
for (const room of Object.keys(roomFiles)) {
  console.log(`\n   ${room} room${Number.isFinite(snrDb[room]) ? ` (pink noise, speech ${fmt(snrDb[room])} dB above it)` : ''}:`);
  console.log('   setting                                          WER      errors/words');
  const mine = rows.filter((r) => r.room === room);
  for (const r of mine) console.log(`   ${r.name.padEnd(47)}  ${fmt(100 * r.wer).padStart(5)} %   ${r.errors}/${r.words}`);
  const file = mine[0];
  console.log(`   ratios to the file: ${mine.slice(1).map((r) => `${r.name.split(/[:(]/)[0].trim()} ${fmt(r.wer / file.wer, 2)}×`).join('; ')}`);
}
for (const r of rows) console.log(`\n   ${r.room} / ${r.name}:\n     "${r.text}"`);

/** What the renderer's own capture code delivers from Chromium's fake microphone playing `file`. */
async function capture(file: string, setting: Setting): Promise<PcmAudio> {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${file}`],
  });
  try {
    const page = await browser.newPage();
    await page.goto(origin);
    const bytes: number[] = await page.evaluate(
      async ({ setting, ms }) => {
        const audioModule = '/audio.js'; // the page's own module, not one of this program's
        const { startCapture } = await import(/* @vite-ignore */ audioModule);
        const frames: Uint8Array[] = [];
        const capture = await startCapture((f: ArrayBuffer) => frames.push(new Uint8Array(f)), setting);
        await new Promise((r) => setTimeout(r, ms));
        capture.stop();
        return frames.flatMap((f) => Array.from(f));
      },
      { setting, ms: micMs },
    );
    return { sampleRate: 16000, channels: [pcm16ToFloat(Uint8Array.from(bytes))] };
  } finally {
    await browser.close();
  }
}
