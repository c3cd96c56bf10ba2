/**
 * How soon the commands answer: `asyncvoice --help` (the CLI's own start-up, before any model
 * work) and `serve`'s first HTTP answer, each timed from spawning the process, several rounds.
 *
 *   npm run bench:startup -- [--rounds 5] [--model DIR]
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { shippedModel } from '../src/llm/model/default-model.ts';
import { fmt, median } from './shared.ts';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, model: { type: 'string' } } });
const BIN = join(import.meta.dirname, '..', 'bin', 'asyncvoice.mjs');
const rounds = Number(args.rounds);
const model = args.model ?? shippedModel();

function timeHelp(): Promise<number> {
  const t0 = performance.now();
  return new Promise((res, rej) => {
    const c = spawn(process.execPath, [BIN, '--help'], { stdio: 'ignore' });
    c.on('exit', (code) => (code === 0 ? res(performance.now() - t0) : rej(new Error(`--help exited ${code}`))));
  });
}

/** From spawn to the first 200 for the page, polling the printed address. */
async function timeServe(): Promise<number> {
  const t0 = performance.now();
  const c = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...(model ? ['--model', model] : [])], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    let out = '';
    const url = await new Promise<string>((res, rej) => {
      c.stdout!.on('data', (d) => {
        out += d;
        const m = out.match(/core service: (\S+)/);
        if (m) res(m[1].replace(/#.*/, ''));
      });
      c.on('exit', (code) => rej(new Error(`serve exited ${code}`)));
    });
    for (;;) {
      const r = await fetch(url).catch(() => null);
      if (r?.status === 200) return performance.now() - t0;
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    c.kill('SIGTERM');
    await new Promise((r) => c.on('exit', r));
  }
}

const help: number[] = [];
const served: number[] = [];
for (let i = 0; i < rounds; i++) {
  help.push(await timeHelp());
  served.push(await timeServe());
}
console.log(`${rounds} rounds, from spawn (node ${process.version}, ${model ?? 'no model'})`);
console.log(`asyncvoice --help:       median ${fmt(median(help), 0)} ms (${help.map((x) => fmt(x, 0)).join(', ')})`);
console.log(`serve, first HTTP 200:   median ${fmt(median(served), 0)} ms (${served.map((x) => fmt(x, 0)).join(', ')})`);
