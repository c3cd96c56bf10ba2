import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { makeTestModel } from '../../src/llm/export/test-model.ts';
import { BIN } from '../helpers/cli.ts';
import { scratchDir } from '../helpers/models.ts';
import { needTools } from '../helpers/tools.ts';

const ARTIFACTS = resolve(__dirname, '../../test-artifacts');
const root = scratchDir('asyncvoice-serve-startup-');
let browser: Browser;
let server: ChildProcess | undefined;
let model = '';

beforeAll(async () => {
  await needTools('chromium', 'espeak-ng', 'pocketsphinx_continuous');
  // Real vocabulary, wide MLPs and int4: a graph build of several seconds, most of it quantising.
  model = makeTestModel({ out: join(root, 'model'), layers: 12, hidden: 512, heads: 8, kvHeads: 4, headDim: 64, intermediate: 6144, dtype: 'bfloat16', seed: 3 }).dir;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--no-first-run', '--disable-background-networking'] });
}, 120_000);

afterAll(async () => {
  server?.kill('SIGKILL');
  await browser?.close();
  rmSync(root, { recursive: true, force: true });
});

/** One GET, timed; a refused or hung request counts as its timeout. */
async function timedGet(url: string, timeoutMs = 10_000): Promise<{ ms: number; status: number }> {
  const t0 = performance.now();
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await r.arrayBuffer();
    return { ms: performance.now() - t0, status: r.status };
  } catch {
    return { ms: performance.now() - t0, status: 0 };
  }
}

describe('serve on a model whose graph is not built yet', () => {
  it('answers HTTP at once, keeps answering during the build, and the page shows the build as it goes', async () => {
    server = spawn(process.execPath, [BIN, 'serve', '--model', model, '--port', '0', '--weights', 'int4'], {
      env: { ...process.env, ASYNCVOICE_CACHE_DIR: join(root, 'cache') },
    });
    let out = '';
    server.stdout!.on('data', (d) => (out += d));
    server.stderr!.on('data', (d) => (out += d));
    const url = await new Promise<string>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`serve printed no URL:\n${out}`)), 30_000);
      server!.stdout!.on('data', () => {
        const m = out.match(/core service: (\S+)/);
        if (m) {
          clearTimeout(timer);
          res(m[1]);
        }
      });
      server!.on('exit', (code) => rej(new Error(`serve exited ${code}:\n${out}`)));
    });
    const first = await timedGet(url);
    expect(first.status).toBe(200);
    expect(first.ms).toBeLessThan(2000);

    // Poll the server through the whole load while a page watches its status line.
    const gets: { ms: number; status: number; building: boolean }[] = [];
    let ready = false;
    const polling = (async () => {
      while (!ready) {
        const building = /building graph/.test(out) && !/starting the model/.test(out);
        gets.push({ ...(await timedGet(url)), building });
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(url);
    // A picture of the page while the graph builds, for the docs (the build may already be over on a fast machine).
    if (await page.waitForFunction(() => /building the model graph \(layer/.test(document.getElementById('activity')!.textContent!), undefined, { timeout: 10_000 }).then(() => true, () => false)) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'startup-building.png') });
    }
    await page.waitForFunction(() => document.getElementById('status')!.textContent!.startsWith('connected ·'), undefined, { timeout: 120_000 });
    ready = true;
    await polling;
    const seen = await page.evaluate(() => (window as unknown as { asyncvoiceTrace: { activity: string[] } }).asyncvoiceTrace.activity);
    // The build went by layer on the page, in order, before the model started and the prompts were encoded.
    const layers = seen.map((a) => a.match(/building the model graph \(layer (\d+)\) (\d+) %/)).filter((m) => m !== null);
    expect(layers.length, seen.join('\n')).toBeGreaterThanOrEqual(3);
    const percents = layers.map((m) => Number(m![2]));
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    const at = (re: RegExp) => seen.findIndex((a) => re.test(a));
    expect(at(/building the model graph/)).toBeLessThan(at(/starting the model/));
    expect(at(/starting the model/)).toBeLessThan(at(/encoding the standing prompts/));
    // Every request made during the build was answered, none after a long wait.
    const during = gets.filter((g) => g.building);
    expect(during.length, JSON.stringify(gets)).toBeGreaterThanOrEqual(3);
    expect(during.every((g) => g.status === 200), JSON.stringify(during)).toBe(true);
    expect(Math.max(...during.map((g) => g.ms)), JSON.stringify(during)).toBeLessThan(2000);
    console.log(`first GET ${first.ms.toFixed(0)} ms; ${during.length} GETs during the build, slowest ${Math.max(...during.map((g) => g.ms)).toFixed(0)} ms`);
    await page.close();
  }, 180_000);
});
