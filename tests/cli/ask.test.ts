import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, cliOut } from '../helpers/cli.ts';
import { scratchDir } from '../helpers/models.ts';

const root = scratchDir();
const env = { ...process.env, ASYNCVOICE_CACHE_DIR: join(root, 'cache') };
const model = join(root, 'model');
const cli = (args: string[]) => cliOut(args, env);

beforeAll(async () => {
  await cli(['model', 'make-test', '--out', model, '--seed', '9']);
}, 60_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('asyncvoice ask', () => {
  // A random-weight model's own probe decides when the writer starts; this question is one where
  // this model (seed 9) says yes before its thinking budget runs out (P(yes) ≈ 5× P(no) at the
  // second probe), so the engine's real logic, unchanged, is what the test exercises.
  const question = 'Why is the sky blue?';
  const ask = async (mode: string) =>
    JSON.parse(await cli(['ask', '--model', model, '--mode', mode, '--json', '--max-thinking', '64', '--max-answer', '8', question]));

  it('--mode async reaches its first answer token at an earlier step than --mode think', async () => {
    const a = await ask('async');
    const t = await ask('think');
    expect(a.mode).toBe('async');
    expect(t.mode).toBe('think');
    expect(a.metrics.firstAnswerTokenStep).toBeGreaterThan(0);
    expect(a.metrics.firstAnswerTokenStep).toBeLessThan(t.metrics.firstAnswerTokenStep);
    // think answers only after its whole thinking budget (a random model never closes </think>).
    expect(t.metrics.firstAnswerTokenStep).toBeGreaterThan(64);
    for (const r of [a, t]) {
      expect(Object.keys(r.metrics)).toEqual(expect.arrayContaining(['firstAnswerTokenMs', 'firstAnswerTokenStep', 'totalDelayMs', 'thinkingTokens', 'answerTokens']));
      expect(r.metrics.answerTokens).toBe(8);
      expect(r.answer.length).toBeGreaterThan(0);
      expect(r.events.at(-1).type).toBe('done');
    }
    expect(a.events.some((e: { type: string }) => e.type === 'control')).toBe(true);
    const n = await ask('nothink');
    expect(n.metrics.firstAnswerTokenStep).toBe(1);
    expect(n.metrics.thinkingTokens).toBe(0);
  }, 120_000);

  it('the live view gives thinking and answer lines of their own, and marks state changes', async () => {
    const out = await cli(['ask', '--model', model, '--max-thinking', '30', '--max-answer', '5', 'Why?']);
    const lines = out.split('\n').filter(Boolean);
    expect(lines.some((l) => l.startsWith('thinking │ '))).toBe(true);
    expect(lines.some((l) => l.startsWith('  answer │ '))).toBe(true);
    expect(lines.every((l) => /^(thinking │ |  answer │ |\[)/.test(l)), out).toBe(true);
    expect(out).toMatch(/\[state listening → thinker_only: turn started @ \d+ ms\]/);
    expect(out).toMatch(/\[done: max-answer-tokens; first answer token \d+ ms \(step \d+\); total delay \d+ ms\]/);
  }, 60_000);

  it('--plain prints the answer alone, the same one --json reports', async () => {
    const args = ['ask', '--model', model, '--max-thinking', '40', '--max-answer', '12', 'Why is the sky blue?'];
    const plain = await cli([...args, '--plain']);
    const json = JSON.parse(await cli([...args, '--json']));
    expect(json.answer.length).toBeGreaterThan(0);
    expect(plain).toBe(`${json.answer.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '')}\n`);
  }, 60_000);

  it('exits within a second of its last answer token, and says what it loads', async () => {
    const child = spawn(process.execPath, [BIN, 'ask', '--model', model, '--mode', 'nothink', '--max-answer', '200', 'Tell me a long story.'], { env });
    const chunks: { at: number; text: string }[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => chunks.push({ at: performance.now(), text: d.toString() }));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    const exitAt = performance.now();
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/^loading .*model \(fp32 weights, fp32 head, fp32 kv, cpu\)…\n/);
    expect(stderr).toMatch(/model ready in \d+\.\d s/);
    const done = chunks.findIndex((c) => c.text.includes('[done'));
    expect(done).toBeGreaterThan(0);
    // The last answer text came in the chunk before the summary line (or with it).
    const lastAnswerAt = chunks[done].text.trimStart().startsWith('[done') ? chunks[done - 1].at : chunks[done].at;
    console.log(`ask: exit ${Math.round(exitAt - lastAnswerAt)} ms after the last answer token`);
    expect(exitAt - lastAnswerAt).toBeLessThan(1000);
  }, 60_000);
});

describe('asyncvoice chat', () => {
  it('holds a multi-turn conversation and quits on /quit', async () => {
    const child = spawn(process.execPath, [BIN, 'chat', '--model', model, '--max-thinking', '20', '--max-answer', '4'], { env });
    let out = '';
    const waitFor = (re: RegExp, count: number) =>
      new Promise<void>((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`timed out waiting for ${re}; got:\n${out}`)), 60_000);
        const check = () => {
          if ((out.match(new RegExp(re, 'g')) ?? []).length >= count) {
            clearTimeout(timer);
            res();
          } else setTimeout(check, 50);
        };
        check();
      });
    child.stdout.on('data', (d) => (out += d));
    child.stdin.write('Hello there.\n');
    await waitFor(/\[done: /, 1);
    child.stdin.write('And again?\n');
    await waitFor(/\[done: /, 2);
    child.stdin.write('/quit\n');
    const code = await new Promise((res) => child.on('exit', res));
    expect(code).toBe(0);
    expect((out.match(/you> /g) ?? []).length).toBeGreaterThanOrEqual(3);
  }, 120_000);

  it('after /interrupt, nothing is printed while the user types; what streamed meanwhile comes after their line', async () => {
    const child = spawn(process.execPath, [BIN, 'chat', '--model', model, '--max-thinking', '400', '--max-answer', '400'], { env });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const until = async (ok: () => boolean, what: string) => {
      const t0 = Date.now();
      while (!ok()) {
        if (Date.now() - t0 > 60_000) throw new Error(`timed out waiting for ${what}; got:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    child.stdin.write('Tell me about the sea.\n');
    await until(() => /thinking │ /.test(out), 'thinking');
    child.stdin.write('/interrupt\n');
    await until(() => out.includes('(say what you want to add) you> '), 'the prompt');
    const atPrompt = out.length;
    // The thinker goes on (400 tokens); the user takes two seconds to type.
    await new Promise((r) => setTimeout(r, 2000));
    expect(out.slice(atPrompt)).toBe('');
    child.stdin.write('and the fish\n');
    await until(() => out.length > atPrompt, 'the held output');
    await until(() => /\[done: /.test(out), 'the end of the turn');
    child.stdin.write('/quit\n');
    expect(await new Promise((res) => child.on('exit', res))).toBe(0);
    // The output held while the user typed came out after their line, the turn then went on to its end.
    expect(out.slice(atPrompt)).toMatch(/thinking │ |answer │ |\[/);
  }, 120_000);
});
