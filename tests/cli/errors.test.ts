import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { encodeWav } from '../../src/audio/wav.ts';
import { runCli } from '../helpers/cli.ts';
import { scratchDir } from '../helpers/models.ts';
import { needTools } from '../helpers/tools.ts';

/**
 * Every failure a person can cause from the command line: one line naming the file, flag or value,
 * exit 2 for bad input and 75 for what may pass if retried, and never a stack trace.
 */
const root = scratchDir('asyncvoice-clierr-');
const env = { ...process.env, ASYNCVOICE_CACHE_DIR: join(root, 'cache'), HF_HUB_CACHE: join(root, 'hf') };
const cli = (args: string[]) => runCli(args, env);
const model = join(root, 'model');

beforeAll(async () => {
  await needTools('espeak-ng', 'pocketsphinx_continuous');
  expect((await cli(['model', 'make-test', '--out', model, '--seed', '3'])).code).toBe(0);
}, 60_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

function expectOneLine(r: { code: number; stderr: string }, code: number, message: RegExp): void {
  expect(r.stderr, r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('asyncvoice:') || l.startsWith('error:')).length).toBe(1);
  expect(r.code, r.stderr).toBe(code);
}

/** A WAV file built by hand, chunks in the order given. */
function wavWithChunks(chunks: [string, Buffer][]): Buffer {
  const parts = chunks.map(([id, body]) => {
    const head = Buffer.alloc(8);
    head.write(id, 0, 'latin1');
    head.writeUInt32LE(body.length, 4);
    return Buffer.concat([head, body]);
  });
  const riff = Buffer.alloc(12);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(4 + parts.reduce((a, p) => a + p.length, 0), 4);
  riff.write('WAVE', 8, 'latin1');
  return Buffer.concat([riff, ...parts]);
}

function fmtChunk(format: number, bits: number, rate = 16000): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(format, 0);
  b.writeUInt16LE(1, 2);
  b.writeUInt32LE(rate, 4);
  b.writeUInt32LE((rate * bits) / 8, 8);
  b.writeUInt16LE(bits / 8, 12);
  b.writeUInt16LE(bits, 14);
  return b;
}

describe('CLI failures are one clear line with the right exit code', () => {
  it('speak: empty text, --out into a missing folder or onto a folder', async () => {
    expectOneLine(await cli(['speak', '', '--out', join(root, 'a.wav')]), 2, /nothing to say/);
    expectOneLine(await cli(['speak', 'hello', '--out', join(root, 'no', 'such', 'a.wav')]), 2, /the folder .*no\/such does not exist/);
    mkdirSync(join(root, 'adir'), { recursive: true });
    expectOneLine(await cli(['speak', 'hello', '--out', join(root, 'adir')]), 2, /is a folder/);
  }, 60_000);

  it('bad option values: port, host, top-p, numbers that are not numbers, unknown flags', async () => {
    expectOneLine(await cli(['serve', '--model', model, '--port', '70000']), 2, /--port must be a whole number from 0 to 65535, got "70000"/);
    expectOneLine(await cli(['serve', '--model', model, '--host', '999.1.1.1']), 2, /--host "999.1.1.1" is not an IPv4 address/);
    expectOneLine(await cli(['generate', '--model', model, '--prompt', 'x', '--top-p', '5']), 2, /--top-p must be a number above 0 and at most 1, got "5"/);
    expectOneLine(await cli(['generate', '--model', model, '--prompt', 'x', '--max-tokens', 'lots']), 2, /--max-tokens must be a whole number/);
    expectOneLine(await cli(['generate', '--model', model, '--prompt', 'x', '--temperature', '-1']), 2, /--temperature must be a number at least 0/);
    expectOneLine(await cli(['generate', '--model', model, '--prompt', 'x', '--prmpt', 'x']), 2, /unknown option '--prmpt'/);
  }, 60_000);

  it('bounds: a flag beyond its range is one line and a pointer to --help, within seconds; files and texts that would be held whole are refused', async () => {
    const brief = (r: { code: number; stderr: string }, message: RegExp) => {
      expectOneLine(r, 2, message);
      const lines = r.stderr.trim().split('\n');
      expect(lines.length, r.stderr).toBeLessThanOrEqual(2); // the error and where the options are listed, not the whole help
      if (lines.length === 2) expect(lines[1]).toMatch(/--help/);
    };
    const t0 = performance.now();
    brief(await cli(['generate', '--model', model, '--prompt', 'x', '--threads', '100000']), /--threads must be a whole number from 1 to \d+, got "100000"/);
    brief(await cli(['generate', '--model', model, '--prompt', 'x', '--max-tokens', '-1']), /--max-tokens must be a whole number from 1 to/);
    brief(await cli(['generate', '--model', model, '--prompt', 'x', '--max-tokens', '1e12', '--json']), /--max-tokens must be a whole number from 1 to 1048576, got "1e12"/);
    brief(await cli(['model', 'make-test', '--out', join(root, 'huge'), '--hidden', '1000000']), /--hidden must be a whole number from 2 to 16384/);
    expect(performance.now() - t0).toBeLessThan(30_000);

    // The context fills before --max-tokens: the text so far comes back, and why it stopped.
    const full = await cli(['generate', '--model', model, '--prompt', 'x', '--max-tokens', '513', '--max-context', '64', '--json']);
    expect(full.code, full.stderr).toBe(0);
    const out = JSON.parse(full.stdout) as { promptIds: number[]; tokenIds: number[]; stoppedBy: string; text: string };
    expect(out.stoppedBy).toBe('context-limit');
    expect(out.promptIds.length + out.tokenIds.length).toBe(65); // 64 positions, and the last token sampled from them
    expect(out.text.length).toBeGreaterThan(0);

    // Only regular files are read: a device would be read forever.
    const t1 = performance.now();
    brief(await cli(['transcribe', '/dev/zero']), /\/dev\/zero is not a regular file/);
    expect(performance.now() - t1).toBeLessThan(10_000);
    // A header that promises samples and holds none.
    const hollow = join(root, 'hollow.wav');
    const head = Buffer.from(encodeWav({ sampleRate: 16000, channels: [new Float32Array(16000)] }).subarray(0, 44));
    writeFileSync(hollow, head);
    brief(await cli(['transcribe', hollow]), /hollow\.wav: the WAV holds no samples/);
    // speak: a 128 KB text is refused before any audio is made.
    brief(await cli(['speak', 'word '.repeat(25_600), '--out', join(root, 'long.wav')]), /the text is 128000 characters; speak says at most 10000/);
  }, 120_000);

  it('a second server on a port in use is told so, as retryable (75)', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      expectOneLine(await cli(['serve', '--model', model, '--port', String(port)]), 75, new RegExp(`port ${port} on 127.0.0.1 is in use`));
    } finally {
      blocker.close();
    }
  }, 120_000);

  it('serve refuses to start when its speech output is silent, naming the package', async () => {
    // Festival with no voice: text2wave exits 0 and writes nothing.
    const bin = join(root, 'novoice');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'text2wave'), '#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && : > "$2"; shift; done\nexit 0\n', { mode: 0o755 });
    const r = await runCli(['serve', '--model', model, '--port', '0', '--tts', 'festival'], { ...env, PATH: `${bin}:${process.env.PATH}` });
    expectOneLine(r, 2, /not serving: speech output \(festival\) does not work: festival has no voice installed.*festvox-kallpc16k/);
  }, 120_000);

  it('a model path that is a file says so', async () => {
    expectOneLine(await cli(['generate', '--model', join(model, 'config.json'), '--prompt', 'x']), 2, /config\.json is a file, not a model folder/);
  });

  it('NaN weights are named as the model’s fault, not "every token is forbidden"', async () => {
    const bad = join(root, 'nan-model');
    cpSync(model, bad, { recursive: true });
    const file = join(bad, 'model.safetensors');
    const bytes = readFileSync(file);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    const norm = header['model.norm.weight'];
    expect(norm.dtype).toBe('F32');
    for (let o = 8 + headerLen + norm.data_offsets[0]; o < 8 + headerLen + norm.data_offsets[1]; o += 4) bytes.writeUInt32LE(0x7fc00000, o);
    writeFileSync(file, bytes);
    expectOneLine(await cli(['generate', '--model', bad, '--prompt', 'Hello', '--max-tokens', '2']), 2, /the model produced NaN logits.*check the checkpoint/);
  }, 120_000);

  it('WAV files: NaN samples name the file; a data chunk before its fmt chunk is read', async () => {
    const nan = join(root, 'nan.wav');
    const samples = Buffer.alloc(4 * 1600);
    samples.writeUInt32LE(0x7fc00000, 400);
    writeFileSync(nan, wavWithChunks([['fmt ', fmtChunk(3, 32)], ['data', samples]]));
    expectOneLine(await cli(['transcribe', nan]), 2, new RegExp(`${nan}: non-finite sample \\(NaN or ∞\\) at sample 100 of channel 1`));

    const speech = encodeWav({ sampleRate: 16000, channels: [new Float32Array(16000)] });
    const data = Buffer.from(speech.subarray(44));
    const reordered = join(root, 'data-first.wav');
    writeFileSync(reordered, wavWithChunks([['data', data], ['LIST', Buffer.from('INFOpad ')], ['fmt ', fmtChunk(1, 16)]]));
    const r = await cli(['transcribe', reordered, '--json']);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ text: '', segments: [] });
  }, 60_000);
});
