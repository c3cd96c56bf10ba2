import { existsSync, readFileSync, readdirSync, statSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { downloadFileToCacheDir, fileExists, getHFHubCachePath, getRepoFolderName } from '@huggingface/hub';
import { ModelSourceError } from '../errors.ts';

export interface DownloadProgress {
  file: string;
  loadedBytes: number;
  totalBytes: number | null;
}

export interface ResolveOptions {
  /** Never touch the network; use the Hugging Face cache only. */
  offline?: boolean;
  revision?: string;
  onProgress?: (p: DownloadProgress) => void;
  /** For tests: a fetch that never reaches the network. */
  fetch?: typeof fetch;
}

const REQUIRED = ['config.json', 'tokenizer.json', 'tokenizer_config.json'];
const OPTIONAL = ['generation_config.json'];
const HF_PREFIX = 'hf:';

/** `hf:Org/Name` (optionally `@revision`) → { repo, revision }; anything else is a local path. */
export function parseHubId(source: string): { repo: string; revision: string } | null {
  if (!source.startsWith(HF_PREFIX)) return null;
  const [repo, revision = 'main'] = source.slice(HF_PREFIX.length).split('@');
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) {
    throw new ModelSourceError(`"${source}" is not a Hub model id; expected hf:Org/Name, e.g. hf:Qwen/Qwen3-0.6B`);
  }
  return { repo, revision };
}

/** Checks that a folder holds a usable Hugging Face model; names each missing file. */
export function checkModelFolder(dir: string, howToGet: string): void {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ModelSourceError(`model folder ${dir} does not exist. ${howToGet}`);
  }
  const missing = REQUIRED.filter((f) => !existsSync(join(dir, f)));
  const hasWeights = existsSync(join(dir, 'model.safetensors')) || existsSync(join(dir, 'model.safetensors.index.json'));
  if (!hasWeights) missing.push('model.safetensors (or model.safetensors.index.json with its shards)');
  if (missing.length) {
    throw new ModelSourceError(`model folder ${dir} is missing: ${missing.join(', ')}. ${howToGet}`);
  }
}

/** Resolves a model source to a local folder, downloading from the Hub into the HF cache if needed. */
export async function resolveModelSource(source: string, opts: ResolveOptions = {}): Promise<string> {
  const hub = parseHubId(source);
  if (!hub) {
    const dir = resolve(source);
    checkModelFolder(dir, 'Point --model at a Hugging Face model folder (config.json, tokenizer files, *.safetensors), or use hf:Org/Name.');
    return dir;
  }
  const cacheDir = getHFHubCachePath();
  const cached = findCachedSnapshot(cacheDir, hub.repo, hub.revision);
  if (cached && isComplete(cached)) return cached;
  if (opts.offline) {
    throw new ModelSourceError(
      `${hub.repo}@${hub.revision} is not in the Hugging Face cache (${cacheDir}) and --offline forbids downloading. ` +
        `Run once with network access (or \`huggingface-cli download ${hub.repo}\`), set HF_HUB_CACHE/HF_HOME to a cache that has it, or pass a local folder.`,
    );
  }
  return downloadSnapshot(hub.repo, hub.revision, cacheDir, opts);
}

function isComplete(dir: string): boolean {
  try {
    checkModelFolder(dir, '');
    const index = join(dir, 'model.safetensors.index.json');
    if (existsSync(index)) {
      const shards = new Set(Object.values(JSON.parse(readFileSync(index, 'utf8')).weight_map as Record<string, string>));
      return [...shards].every((s) => existsSync(join(dir, s)));
    }
    return true;
  } catch {
    return false;
  }
}

/** The snapshot folder for repo@revision in the standard HF cache layout, if any. */
export function findCachedSnapshot(cacheDir: string, repo: string, revision: string): string | null {
  const repoDir = join(cacheDir, getRepoFolderName({ name: repo, type: 'model' }));
  const refFile = join(repoDir, 'refs', revision);
  const commit = existsSync(refFile) ? readFileSync(refFile, 'utf8').trim() : /^[0-9a-f]{40}$/.test(revision) ? revision : null;
  if (commit) {
    const dir = join(repoDir, 'snapshots', commit);
    return existsSync(dir) ? dir : null;
  }
  return null;
}

async function downloadSnapshot(repo: string, revision: string, cacheDir: string, opts: ResolveOptions): Promise<string> {
  const baseFetch = opts.fetch ?? fetch;
  const wrapFetch = (file: string): typeof fetch =>
    (async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
      const res = await baseFetch(input, init);
      if (!opts.onProgress || !res.body || (init?.method && init.method !== 'GET')) return res;
      const total = Number(res.headers.get('content-length')) || null;
      let loaded = 0;
      const counted = res.body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, ctl) {
            loaded += chunk.byteLength;
            opts.onProgress!({ file, loadedBytes: loaded, totalBytes: total });
            ctl.enqueue(chunk);
          },
        }),
      );
      return new Response(counted, { status: res.status, statusText: res.statusText, headers: res.headers });
    }) as typeof fetch;

  const get = async (path: string): Promise<string> => {
    try {
      return await downloadFileToCacheDir({ repo, path, revision, cacheDir, fetch: wrapFetch(path) });
    } catch (e) {
      throw new ModelSourceError(
        `could not download ${path} of ${repo}@${revision}: ${(e as Error).message}. ` +
          `Without network, use --offline with a filled Hugging Face cache, or a local model folder.`,
        { retryable: true, cause: e },
      );
    }
  };
  const has = async (path: string): Promise<boolean> => {
    try {
      return await fileExists({ repo, path, revision, fetch: baseFetch });
    } catch (e) {
      throw new ModelSourceError(
        `could not reach the Hugging Face Hub for ${repo}: ${(e as Error).message}. Use --offline with a filled cache, or a local folder.`,
        { retryable: true, cause: e },
      );
    }
  };

  let snapshotDir = '';
  for (const f of REQUIRED) snapshotDir = dirname(await get(f));
  for (const f of OPTIONAL) if (await has(f)) await get(f);
  if (await has('model.safetensors.index.json')) {
    const index = JSON.parse(readFileSync(await get('model.safetensors.index.json'), 'utf8'));
    for (const shard of new Set(Object.values(index.weight_map as Record<string, string>))) await get(shard);
  } else {
    await get('model.safetensors');
  }
  // @huggingface/hub writes blobs and snapshots but no ref; record it so --offline finds it next time.
  const repoDir = join(cacheDir, getRepoFolderName({ name: repo, type: 'model' }));
  mkdirSync(join(repoDir, 'refs'), { recursive: true });
  writeFileSync(join(repoDir, 'refs', revision), basename(snapshotDir));
  return snapshotDir;
}

/** Lists cached model snapshots (for error messages and `model list`). */
export function listCachedModels(cacheDir = getHFHubCachePath()): string[] {
  if (!existsSync(cacheDir)) return [];
  return readdirSync(cacheDir)
    .filter((d) => d.startsWith('models--'))
    .map((d) => d.slice('models--'.length).replace('--', '/'));
}
