import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { toAsrInput } from '../../src/audio/resample.ts';
import { floatToPcm16 } from '../../src/audio/wav.ts';
import { makeTestModel } from '../../src/llm/export/test-model.ts';
import { EspeakNgEngine } from '../../src/tts/engine.ts';
import { scratchDir } from '../helpers/models.ts';
import { startServeProcess } from '../helpers/serve-process.ts';
import { next } from '../helpers/socket.ts';
import { needTools } from '../helpers/tools.ts';

// A recogniser that dies never freezes the service: its children killed again and again while
// speech streams in, the service still hears, answers and stops when told.

const root = scratchDir('asyncvoice-deaths-');
let server: ChildProcess;
let url = '';
let socket: Socket;
beforeAll(async () => {
  await needTools('espeak-ng', 'pocketsphinx_continuous', 'pgrep');
  const model = makeTestModel({ out: join(root, 'model'), seed: 4 }).dir;
  ({ child: server, url } = await startServeProcess(['--model', model, '--port', '0', '--max-thinking', '8', '--max-answer', '4'], { ...process.env, ASYNCVOICE_CACHE_DIR: join(root, 'cache') }));
  await new Promise<void>((res) => {
    let out = '';
    server.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('model ready')) res();
    });
  });
}, 120_000);
afterAll(() => {
  socket?.close();
  server?.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

const recognisers = () => {
  try {
    return execFileSync('pgrep', ['-P', String(server.pid), '-x', 'pocketsphinx_co'], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
};
const fifoWaits = () =>
  readdirSync(`/proc/${server.pid}/task`).flatMap((t) => {
    try {
      const w = readFileSync(`/proc/${server.pid}/task/${t}/wchan`, 'utf8');
      return /fifo/i.test(w) ? [`${t}: ${w}`] : [];
    } catch {
      return [];
    }
  });

describe('serve with recognisers that die', () => {
  it('keeps hearing and answering, leaves no thread waiting, and stops within 5 s of SIGTERM', async () => {
    const tts = new EspeakNgEngine({ voice: 'en-us+klatt', wordsPerMinute: 150 });
    const s = await tts.synthesize('what is the capital of france');
    const speech = floatToPcm16(toAsrInput({ sampleRate: s.sampleRate, channels: [s.pcm] }));
    const silence = new Uint8Array(3200 * 12);
    socket = io(url.replace(/#.*$/, ''), { transports: ['websocket'], reconnection: false, forceNew: true });
    const errors: string[] = [];
    socket.on('error', (e: { message: string }) => errors.push(e.message));
    await next(socket, 'hello');
    /** Sends PCM16 16 kHz in 100 ms frames at the pace of speech, calling `each` after every frame. */
    const stream = async (bytes: Uint8Array, each?: (i: number) => void) => {
      for (let i = 0, k = 0; i < bytes.length; i += 3200, k++) {
        socket.emit('audio', bytes.slice(i, Math.min(bytes.length, i + 3200)));
        each?.(k);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    // Seven kills (more than libuv's four worker threads), while utterances stream in and between them.
    let kills = 0;
    for (let round = 0; round < 3; round++) {
      await stream(speech, (k) => {
        if (k % 4 === 1) for (const pid of recognisers()) kills += (process.kill(pid, 'SIGKILL'), 1);
      });
      for (const pid of recognisers()) kills += (process.kill(pid, 'SIGKILL'), 1);
      await stream(silence);
    }
    expect(kills).toBeGreaterThan(4);
    expect(fifoWaits()).toEqual([]);
    // The utterances whose decoder died failed, and the client was told so, in words.
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((m) => /pocketsphinx/.test(m)), errors.join('\n')).toBe(true);
    // A spoken utterance is still recognised.
    const finals: string[] = [];
    socket.on('transcript', (t: { text: string; final: boolean }) => t.final && finals.push(t.text));
    await stream(speech);
    await stream(silence);
    await expect.poll(() => finals.some((f) => f.split(/\s+/).filter((w) => ['what', 'is', 'the', 'capital', 'of', 'france'].includes(w)).length >= 2), { timeout: 20_000 }).toBe(true);
    // A typed turn answers.
    const answered = next(socket, 'answer', 30_000);
    socket.emit('text', { text: 'Are you still there?' });
    await answered;
    expect(fifoWaits()).toEqual([]);
    // And SIGTERM ends it within 5 s.
    const t0 = performance.now();
    const exited = new Promise<number | null>((res) => server.once('exit', (code) => res(code)));
    server.kill('SIGTERM');
    await Promise.race([exited, new Promise((_, rej) => setTimeout(() => rej(new Error('serve still running 5 s after SIGTERM')), 5000))]);
    expect(performance.now() - t0).toBeLessThan(5000);
  }, 120_000);
});
