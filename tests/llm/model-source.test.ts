import { afterAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveModelSource, parseHubId, type DownloadProgress } from '../../src/llm/model/model-source.ts';
import { makeTestModel } from '../../src/llm/export/test-model.ts';
import { ModelSourceError } from '../../src/errors.ts';
import { scratchDir } from '../helpers/models.ts';

const root = scratchDir();
afterAll(() => rmSync(root, { recursive: true, force: true }));
const COMMIT = 'a'.repeat(40);

/**
 * An in-process stand-in for the Hub's HTTP API (paths-info, resolve with ranges, raw HEAD),
 * serving a made model folder; it counts requests so tests can prove --offline sent none.
 */
function fakeHub(repo: string, dir: string) {
  const files = new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
  const calls: string[] = [];
  const ranges: string[] = [];
  const fetchImpl = (async (input: Parameters<typeof fetch>[0], init: RequestInit = {}) => {
    const url = new URL(String(input));
    const method = init.method ?? 'GET';
    calls.push(`${method} ${url.pathname}`);
    const notFound = () => new Response('not found', { status: 404, headers: { 'X-Error-Code': 'EntryNotFound' } });
    if (method === 'POST' && url.pathname === `/api/models/${repo}/paths-info/main`) {
      const { paths } = JSON.parse(String(init.body));
      return Response.json(
        (paths as string[]).filter((p) => files.has(p)).map((p) => ({
          path: p, type: 'file', size: files.get(p)!.length,
          oid: createHash('sha1').update(files.get(p)!).digest('hex'),
          lastCommit: { id: COMMIT, date: '2026-01-01T00:00:00Z', title: 'add' },
        })),
      );
    }
    const m = url.pathname.match(new RegExp(`^/${repo}/(resolve|raw)/main/(.+)$`));
    if (!m) return notFound();
    const body = files.get(m[2]);
    if (!body) return notFound();
    const etag = `"${createHash('sha1').update(body).digest('hex')}"`;
    if (method === 'HEAD') return new Response(null, { status: 200, headers: { ETag: etag } });
    const range = new Headers(init.headers).get('Range');
    const r = range?.match(/^bytes=(\d+)-(\d*)$/);
    if (r) {
      ranges.push(`${m[2]}:${range}`);
      const from = Number(r[1]);
      const to = r[2] ? Number(r[2]) : body.length - 1;
      return new Response(body.subarray(from, to + 1), {
        status: 206,
        headers: { 'Content-Range': `bytes ${from}-${to}/${body.length}`, 'Content-Length': String(to - from + 1), ETag: etag },
      });
    }
    return new Response(body, { status: 200, headers: { 'Content-Length': String(body.length), ETag: etag } });
  }) as typeof fetch;
  return { fetch: fetchImpl, calls, ranges };
}

describe('model sources', () => {
  it('parses hub ids and rejects malformed ones', () => {
    expect(parseHubId('hf:Qwen/Qwen3-0.6B')).toEqual({ repo: 'Qwen/Qwen3-0.6B', revision: 'main' });
    expect(parseHubId('hf:Qwen/Qwen3-0.6B@v1')).toEqual({ repo: 'Qwen/Qwen3-0.6B', revision: 'v1' });
    expect(parseHubId('./models/x')).toBeNull();
    expect(() => parseHubId('hf:../../etc')).toThrow(ModelSourceError);
  });

  it('downloads a Hub model into the HF cache (HF_HUB_CACHE) with progress, then works --offline', async () => {
    const src = makeTestModel({ out: join(root, 'src'), layers: 1, hidden: 16, heads: 2, kvHeads: 1, headDim: 8, intermediate: 16 }).dir;
    process.env.HF_HUB_CACHE = join(root, 'hf-cache');
    const hub = fakeHub('test-org/tiny', src);
    const progress: DownloadProgress[] = [];
    const dir = await resolveModelSource('hf:test-org/tiny', { fetch: hub.fetch, onProgress: (p) => progress.push(p) });
    expect(dir).toBe(join(root, 'hf-cache', 'models--test-org--tiny', 'snapshots', COMMIT));
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'model.safetensors']) {
      expect(readFileSync(join(dir, f)).equals(readFileSync(join(src, f)))).toBe(true);
    }
    const weights = progress.filter((p) => p.file === 'model.safetensors');
    expect(weights.at(-1)!.loadedBytes).toBe(readFileSync(join(src, 'model.safetensors')).length);
    expect(weights.at(-1)!.totalBytes).toBe(weights.at(-1)!.loadedBytes);
    expect(readFileSync(join(root, 'hf-cache', 'models--test-org--tiny', 'refs', 'main'), 'utf8')).toBe(COMMIT);

    const before = hub.calls.length;
    expect(await resolveModelSource('hf:test-org/tiny', { offline: true, fetch: hub.fetch })).toBe(dir);
    expect(hub.calls.length).toBe(before);
  });

  it('resumes an interrupted download from where it stopped', async () => {
    const src = makeTestModel({ out: join(root, 'src2'), layers: 1, hidden: 16, heads: 2, kvHeads: 1, headDim: 8, intermediate: 16, seed: 2 }).dir;
    process.env.HF_HUB_CACHE = join(root, 'resume-cache');
    const weights = readFileSync(join(src, 'model.safetensors'));
    const oid = createHash('sha1').update(weights).digest('hex');
    const blobs = join(root, 'resume-cache', 'models--test-org--resume', 'blobs');
    mkdirSync(blobs, { recursive: true });
    const half = Math.floor(weights.length / 2);
    writeFileSync(join(blobs, `${oid}.incomplete`), weights.subarray(0, half));
    const hub = fakeHub('test-org/resume', src);
    const dir = await resolveModelSource('hf:test-org/resume', { fetch: hub.fetch });
    expect(hub.ranges).toContain(`model.safetensors:bytes=${half}-`);
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weights)).toBe(true);
  });

  it('without network: a retryable error that says how to work offline', async () => {
    process.env.HF_HUB_CACHE = join(root, 'empty-cache');
    const down = (async () => {
      throw new TypeError('fetch failed');
    }) as typeof fetch;
    const err = await resolveModelSource('hf:test-org/other', { fetch: down }).catch((e) => e);
    expect(err).toBeInstanceOf(ModelSourceError);
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/fetch failed.*--offline/);
    expect(existsSync(join(root, 'empty-cache', 'models--test-org--other', 'refs'))).toBe(false);
  });
});
