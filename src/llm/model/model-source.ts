import { createWriteStream, existsSync, readFileSync, readdirSync, renameSync, statSync, mkdirSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { downloadFileToCacheDir, fileExists, getHFHubCachePath, getRepoFolderName, pathsInfo } from '@huggingface/hub';
import { ModelSourceError } from '../../errors.ts';

/** A model folder's JSON file; a missing or unreadable one is a ModelSourceError naming it. */
export function readJson(path: string): unknown {
  if (!existsSync(path)) throw new ModelSourceError(`${path} does not exist`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ModelSourceError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

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
  if (!existsSync(dir)) throw new ModelSourceError(`model folder ${dir} does not exist. ${howToGet}`);
  if (!statSync(dir).isDirectory()) {
    throw new ModelSourceError(`${dir} is a file, not a model folder: --model takes the folder that holds config.json and the weights. ${howToGet}`);
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

const HUB_URL = 'https://huggingface.co';

/**
 * Fills the cache's blob for one file, resuming a partial `<blob>.incomplete` with an HTTP range
 * request. The blob path is the one @huggingface/hub itself uses, so its downloadFileToCacheDir
 * then only links the snapshot entry (it restarts partial files from zero on its own).
 */
async function fetchBlobResumable(
  repo: string,
  path: string,
  revision: string,
  cacheDir: string,
  doFetch: typeof fetch,
  onProgress?: (p: DownloadProgress) => void,
): Promise<void> {
  const [info] = await pathsInfo({ repo, paths: [path], revision, expand: true, fetch: doFetch });
  if (!info) throw new Error(`${path} is not in the repository`);
  const etag = info.lfs?.oid ?? info.xetHash ?? info.oid;
  if (!etag) throw new Error(`the Hub gave no hash for ${path}`);
  const size = info.lfs?.size ?? info.size;
  const blob = join(cacheDir, getRepoFolderName({ name: repo, type: 'model' }), 'blobs', etag);
  if (existsSync(blob)) return;
  mkdirSync(dirname(blob), { recursive: true });
  const partial = `${blob}.incomplete`;
  let have = existsSync(partial) ? statSync(partial).size : 0;
  if (have > size) have = 0;
  const url = `${HUB_URL}/${repo}/resolve/${encodeURIComponent(revision)}/${path}`;
  const res = await doFetch(url, have ? { headers: { Range: `bytes=${have}-` } } : {});
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} for ${path}`);
  if (res.status !== 206) have = 0; // the server ignored the range: start over
  let loaded = have;
  onProgress?.({ file: path, loadedBytes: loaded, totalBytes: size });
  const counted = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>).map((chunk: Uint8Array) => {
    loaded += chunk.byteLength;
    onProgress?.({ file: path, loadedBytes: loaded, totalBytes: size });
    return chunk;
  });
  await pipeline(counted, createWriteStream(partial, { flags: have ? 'a' : 'w' }));
  const got = statSync(partial).size;
  if (got !== size) throw new Error(`${path}: got ${got} of ${size} bytes (run again to resume)`);
  renameSync(partial, blob);
}

async function downloadSnapshot(repo: string, revision: string, cacheDir: string, opts: ResolveOptions): Promise<string> {
  const doFetch = opts.fetch ?? fetch;
  const failed = (what: string, e: unknown) =>
    new ModelSourceError(
      `could not download ${what} of ${repo}@${revision}: ${(e as Error).message}. ` +
        `Without network, use --offline with a filled Hugging Face cache, or a local model folder.`,
      { retryable: true, cause: e },
    );
  const get = async (path: string): Promise<string> => {
    try {
      await fetchBlobResumable(repo, path, revision, cacheDir, doFetch, opts.onProgress);
      return await downloadFileToCacheDir({ repo, path, revision, cacheDir, fetch: doFetch });
    } catch (e) {
      throw failed(path, e);
    }
  };
  const has = async (path: string): Promise<boolean> => {
    try {
      return await fileExists({ repo, path, revision, fetch: doFetch });
    } catch (e) {
      throw failed(path, e);
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
