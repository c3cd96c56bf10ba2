/**
 * Speech recognition through the renderer's real capture path, per microphone setting: espeak-ng
 * questions played into headless Chromium's fake microphone, captured by renderer/audio.js (the
 * browser's audio processing, then the 16 kHz AudioWorklet), recognised by pocketsphinx, scored
 * against the same WAV recognised straight from the file. All figures come from this one run.
 *
 *   npm run bench:capture
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { PocketsphinxRecognizer } from '../src/asr/pocketsphinx.ts';
import { SileroVad } from '../src/asr/vad.ts';
import { transcribeAudio } from '../src/asr/transcribe.ts';
import { hasTool, INSTALL_HINTS, runTool } from '../src/audio/tools.ts';
import { durationMs, encodeWav, parseWav, pcm16ToFloat, type PcmAudio } from '../src/audio/wav.ts';
import { staticFiles } from '../src/server/serve.ts';
import { wordErrors } from '../src/asr/word-errors.ts';
import { SPOKEN_QUESTIONS } from '../tests/helpers/spoken-questions.ts';
import { fmt } from './shared.ts';

const QUESTIONS = SPOKEN_QUESTIONS;
const SETTINGS: Record<string, { echoCancellation: boolean; noiseSuppression?: boolean; autoGainControl?: boolean }> = {
  'speakers (echo cancellation; the default)': { echoCancellation: true },
  'headphones (no processing)': { echoCancellation: false },
  'browser defaults (echo + noise + gain)': { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
};

const missing: string[] = [];
for (const t of ['espeak-ng', 'sox', 'pocketsphinx_continuous', 'chromium']) if (!(await hasTool(t))) missing.push(`${t}: ${INSTALL_HINTS[t] ?? `install ${t}`}`);
if (missing.length) {
  console.error(`bench:capture needs programs that are not installed (scripts/setup-system.sh installs them):\n  ${missing.join('\n  ')}`);
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), 'asyncvoice-bench-capture-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

// The microphone: each question, 1.5 s of silence around it, at 48 kHz as a sound card gives it.
process.stderr.write('synthesising the questions...\n');
await runTool('sox', ['-n', '-r', '48000', '-c', '1', '-b', '16', join(dir, 'gap.wav'), 'trim', '0', '1.5']);
const parts = [join(dir, 'gap.wav')];
for (const [i, q] of QUESTIONS.entries()) {
  await runTool('espeak-ng', ['-v', 'en-us+klatt', '-s', '150', '-w', join(dir, `raw${i}.wav`), q]);
  await runTool('sox', [join(dir, `raw${i}.wav`), '-r', '48000', '-c', '1', '-b', '16', join(dir, `q${i}.wav`)]);
  parts.push(join(dir, `q${i}.wav`), join(dir, 'gap.wav'));
}
const micFile = join(dir, 'mic.wav');
await runTool('sox', [...parts, join(dir, 'gap.wav'), micFile]);
const mic = parseWav(readFileSync(micFile), 'mic.wav');
const micMs = durationMs(mic);

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

const rows: { name: string; wer: number; errors: number; words: number; text: string }[] = [];
const direct = await score(mic);
rows.push({ name: 'the WAV file itself (no browser)', wer: direct.errors / direct.words, ...direct });
for (const [name, setting] of Object.entries(SETTINGS)) {
  process.stderr.write(`capturing ${(micMs / 1000).toFixed(0)} s through Chromium: ${name}...\n`);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${micFile}`],
  });
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
  await browser.close();
  const captured: PcmAudio = { sampleRate: 16000, channels: [pcm16ToFloat(Uint8Array.from(bytes))] };
  writeFileSync(join(dir, 'captured.wav'), encodeWav(captured));
  const s = await score(captured);
  rows.push({ name, wer: s.errors / s.words, ...s });
}
server.close();
await recognizer.close();

console.log(`\nCapture-path recognition — ${QUESTIONS.length} espeak-ng questions (${(micMs / 1000).toFixed(1)} s), pocketsphinx, one run`);
console.log('   setting                                       WER      errors/words');
for (const r of rows) console.log(`   ${r.name.padEnd(44)}  ${fmt(100 * r.wer).padStart(5)} %   ${r.errors}/${r.words}`);
const [file, speakers, headphones] = rows;
console.log(`\n   speakers / file: ${fmt(speakers.wer / file.wer, 2)}×; headphones / file: ${fmt(headphones.wer / file.wer, 2)}×`);
for (const r of rows) console.log(`\n   ${r.name}:\n     "${r.text}"`);
