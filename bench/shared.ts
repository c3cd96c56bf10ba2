import { spawn, type ChildProcess } from 'node:child_process';
import { io, type Socket } from 'socket.io-client';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { missingTools, runTool } from '../src/system/tools.ts';
import { ProgressBar } from '../src/cli/progress.ts';
import { makeTestModel } from '../src/llm/export/test-model.ts';
import { SPOKEN_QUESTIONS } from './spoken-questions.ts';

/** The random-weight model with a preset's real shapes that benchmarks share (made once). */
export function benchModel(preset: string): string {
  const dir = join(process.cwd(), '.cache', 'bench', `${preset}-bf16`);
  if (!existsSync(join(dir, 'model.safetensors'))) {
    const bar = new ProgressBar(`making ${preset} (random weights, bf16)`);
    makeTestModel({ out: dir, preset, dtype: 'bfloat16', seed: 0, onProgress: (d, t, n) => bar.update(d, t, n) });
    bar.done();
  }
  return dir;
}

/** n token ids spread over the vocabulary, different per `salt`: a prompt whose content does not matter. */
export const tokensFor = (n: number, salt: number): number[] => Array.from({ length: n }, (_, i) => 1000 + ((i * 7919 + salt * 104729) % 140000));

/**
 * Starts `asyncvoice serve ARGS` as a user would and connects to it like the renderer: resolves once
 * the page's `hello` came (the model is ready). `output()` is what it printed so far.
 */
export async function startServe(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; socket: Socket; output: () => string }> {
  const child = spawn(process.execPath, [bin, 'serve', ...args], { env });
  let out = '';
  const url = await new Promise<string>((res, rej) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = out.match(/core service: (\S+)/);
      if (m) res(m[1]);
    });
    child.stderr!.on('data', (d) => process.stderr.write(d));
    child.on('exit', (code) => rej(new Error(`serve exited ${code}`)));
  });
  const socket: Socket = io(url, { transports: ['websocket'], reconnection: false });
  await new Promise<void>((res, rej) => {
    socket.once('hello', () => res());
    socket.once('connect_error', rej);
  });
  return { child, socket, output: () => out };
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const fmt = (x: number, d = 1) => x.toFixed(d);

/** Exits (code 2) naming what to install when a program a benchmark needs is missing. */
export async function requireTools(bench: string, tools: string[]): Promise<void> {
  const missing = await missingTools(tools);
  if (missing.length) {
    console.error(`${bench} needs programs that are not installed (scripts/setup-system.sh installs them):\n  ${missing.join('\n  ')}`);
    process.exit(2);
  }
}

/**
 * The spoken questions as one 48 kHz recording, as a sound card gives it: each question (espeak-ng's
 * Klatt voice, 150 words/min) with 1.5 s of silence around it. Returns its path in `dir`.
 */
export async function spokenQuestionsWav(dir: string): Promise<string> {
  process.stderr.write('synthesising the questions...\n');
  await runTool('sox', ['-n', '-r', '48000', '-c', '1', '-b', '16', join(dir, 'gap.wav'), 'trim', '0', '1.5']);
  const parts = [join(dir, 'gap.wav')];
  for (const [i, q] of SPOKEN_QUESTIONS.entries()) {
    await runTool('espeak-ng', ['-v', 'en-us+klatt', '-s', '150', '-w', join(dir, `raw${i}.wav`), q]);
    await runTool('sox', [join(dir, `raw${i}.wav`), '-r', '48000', '-c', '1', '-b', '16', join(dir, `q${i}.wav`)]);
    parts.push(join(dir, `q${i}.wav`), join(dir, 'gap.wav'));
  }
  const out = join(dir, 'questions.wav');
  await runTool('sox', [...parts, join(dir, 'gap.wav'), out]);
  return out;
}

/** log-softmax of one row of logits, in float64. */
export function logSoftmax(x: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v);
  let z = 0;
  for (const v of x) z += Math.exp(v - max);
  const lz = max + Math.log(z);
  return Float64Array.from(x, (v) => v - lz);
}

/** KL(p ‖ q) of two rows given as log-probabilities, and whether their top tokens agree. */
export function klAndTop1(lp: Float64Array, lq: Float64Array): { kl: number; sameTop: boolean } {
  let kl = 0;
  let bp = 0;
  let bq = 0;
  for (let i = 0; i < lp.length; i++) {
    kl += Math.exp(lp[i]) * (lp[i] - lq[i]);
    if (lp[i] > lp[bp]) bp = i;
    if (lq[i] > lq[bq]) bq = i;
  }
  return { kl, sameTop: bp === bq };
}
