import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.ts';
import { scratchDir } from '../helpers/models.ts';

const root = scratchDir();
const env = { ...process.env, ASYNCVOICE_CACHE_DIR: join(root, 'cache'), HF_HUB_CACHE: join(root, 'hf') };

const cli = (args: string[]) => runCli(args, env);

const model = join(root, 'model');
beforeAll(async () => {
  const made = await cli(['model', 'make-test', '--out', model, '--seed', '9']);
  expect(made.code).toBe(0);
}, 60_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('asyncvoice generate', () => {
  it('--json gives identical ids across runs, and the ids the tokenizer made from the chat prompt', async () => {
    const args = ['generate', '--model', model, '--prompt', 'What is the capital of France?', '--chat', '--max-tokens', '12', '--json'];
    const a = await cli(args);
    const b = await cli(args);
    expect(a.code).toBe(0);
    const ja = JSON.parse(a.stdout);
    const jb = JSON.parse(b.stdout);
    expect(ja.tokenIds).toHaveLength(12);
    expect(jb.tokenIds).toEqual(ja.tokenIds);
    expect(jb.promptIds).toEqual(ja.promptIds);
    // <|im_start|>user\n … <|im_end|>\n<|im_start|>assistant\n
    expect(ja.promptIds[0]).toBe(151644);
    expect(ja.promptIds.slice(-3)).toEqual([151644, 77091, 198]);
    expect(typeof ja.text).toBe('string');
    expect(ja.timings.prefillMs).toBeGreaterThan(0);
    expect(ja.timings.decodeMsPerToken).toBeGreaterThan(0);
  }, 120_000);

  it('streams text when not --json', async () => {
    const r = await cli(['generate', '--model', model, '--prompt', 'Hello', '--max-tokens', '5']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().length).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/decode [\d.]+ ms\/token/);
  }, 60_000);

  it('fails clearly on a missing folder', async () => {
    const r = await cli(['generate', '--model', join(root, 'no-such-model'), '--prompt', 'hi', '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/model folder .*no-such-model does not exist/);
    expect(r.stdout).toBe('');
  });

  it('fails clearly on a folder missing files, naming them', async () => {
    const partial = join(root, 'partial');
    cpSync(model, partial, { recursive: true });
    rmSync(join(partial, 'tokenizer.json'));
    rmSync(join(partial, 'model.safetensors'));
    const r = await cli(['generate', '--model', partial, '--prompt', 'hi']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing: tokenizer.json, model.safetensors/);
  });

  it('fails clearly on a corrupt safetensors header', async () => {
    const bad = join(root, 'corrupt');
    cpSync(model, bad, { recursive: true });
    const file = join(bad, 'model.safetensors');
    const bytes = readFileSync(file);
    bytes.write('{"oops', 8, 'utf8');
    writeFileSync(file, bytes);
    const r = await cli(['generate', '--model', bad, '--prompt', 'hi']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/corrupt safetensors header/);
  });

  it('fails clearly on an unsupported model_type', async () => {
    const other = join(root, 'gpt2');
    cpSync(model, other, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(other, 'config.json'), 'utf8'));
    writeFileSync(join(other, 'config.json'), JSON.stringify({ ...cfg, model_type: 'gpt2' }));
    const r = await cli(['generate', '--model', other, '--prompt', 'hi']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/model_type "gpt2" is not supported; supported Llama-family decoders: qwen3, qwen2, llama, mistral/);
  });

  it('offline with a Hub id that is not cached says what to do', async () => {
    const r = await cli(['generate', '--model', 'hf:Qwen/Qwen3-0.6B', '--offline', '--prompt', 'hi']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Qwen\/Qwen3-0.6B@main is not in the Hugging Face cache .* --offline forbids downloading/);
  });
});
