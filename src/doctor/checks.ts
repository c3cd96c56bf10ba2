import { existsSync } from 'node:fs';
import { toAsrInput } from '../audio/resample.ts';
import { hasTool, runTool } from '../system/tools.ts';
import type { Recognizer } from '../asr/recognizer.ts';
import { SpeechEngineError } from '../errors.ts';
import type { SpeechAudio, TtsEngine } from '../tts/engine.ts';

/**
 * Checks that do the real thing — synthesise, recognise, load, launch — rather than look for a
 * file: a festival with no voice is installed and still silent. `serve` runs the speech ones
 * before it takes clients; `asyncvoice doctor` runs them all and says what to install.
 */

export interface CheckResult {
  name: string;
  ok: boolean;
  /** What works (ok) or what is wrong and how to fix it. */
  detail: string;
}

const PHRASE = 'Testing one two three.';

/** Synthesises a short phrase: audible, finite, of a plausible length, or a SpeechEngineError naming the fix. */
export async function checkTts(tts: TtsEngine): Promise<SpeechAudio> {
  const out = await tts.synthesize(PHRASE);
  let sum = 0;
  for (const v of out.pcm) {
    if (!Number.isFinite(v)) throw new SpeechEngineError(`${tts.name} produced non-finite samples`);
    sum += v * v;
  }
  const rms = Math.sqrt(sum / Math.max(1, out.pcm.length));
  if (out.durationMs < 300 || rms < 0.005) {
    throw new SpeechEngineError(`${tts.name} produced no audible speech (${out.durationMs.toFixed(0)} ms, rms ${rms.toFixed(4)}); is a voice installed?`);
  }
  return out;
}

/** Runs the recogniser on real speech (from `speech`); returns what it heard. Failing to run is the error. */
export async function checkRecognizer(rec: Recognizer, speech: SpeechAudio): Promise<string> {
  const audio = toAsrInput({ sampleRate: speech.sampleRate, channels: [speech.pcm] });
  const t = await rec.recognize(audio);
  return t.text;
}

/** Both speech engines a server needs, checked together; the error says which one and what to install. */
export async function checkSpeechEngines(tts: TtsEngine, rec: Recognizer): Promise<{ ttsMs: number; heard: string }> {
  const t0 = performance.now();
  const speech = await checkTts(tts).catch((e: Error) => {
    throw new SpeechEngineError(`speech output (${tts.name}) does not work: ${e.message}`, { cause: e });
  });
  const ttsMs = performance.now() - t0;
  const heard = await checkRecognizer(rec, speech).catch((e: Error) => {
    throw new SpeechEngineError(`speech recognition (${rec.name}) does not work: ${e.message}`, { cause: e });
  });
  return { ttsMs, heard };
}

/** Where a Chromium-family browser lives here, if anywhere (the renderer's tests and benches drive it). */
export function findChromium(): string | null {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome'];
  return candidates.find((p): p is string => !!p && existsSync(p)) ?? null;
}

/** Launches the browser for its version: found, and it starts. */
export async function checkBrowser(): Promise<string> {
  const path = findChromium();
  if (!path) throw new SpeechEngineError('no Chromium found (Debian/Ubuntu: apt-get install chromium; or set CHROMIUM_PATH)');
  const { stdout } = await runTool(path, ['--headless', '--no-sandbox', '--version'], { timeoutMs: 30_000 });
  return `${stdout.toString().trim()} (${path})`;
}

/** A program on PATH that plays audio (the CLI's `speak` without --out). */
export async function checkPlayer(): Promise<string> {
  for (const p of ['aplay', 'play', 'afplay']) if (await hasTool(p)) return p;
  throw new SpeechEngineError('no audio player found (Debian/Ubuntu: apt-get install alsa-utils or sox)');
}
