import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { cacheRoot } from './cache-root.ts';
import { BackendError, ModelSourceError, UnsupportedModelError } from '../../errors.ts';
import type { DecoderConfig } from '../model/config.ts';
import type { BuildJob, BuildMessage } from './graph-build-job.ts';
import { buildDecoderGraph } from './decoder-graph.ts';
import { GRAPH_FORMAT_VERSION, defaultHeadFormat, defaultKvFormat, type HeadFormat, type KvFormat, type RopeMode, type WeightFormat } from './contract.ts';
import type { TensorInfo } from '../model/safetensors.ts';

/**
 * Key of a built graph: the builder's format version, the options, the config text, and for each
 * weight file its size, modification time and header (which names every tensor's offset).
 */
export function graphKey(modelDir: string, tensors: Map<string, TensorInfo>, options: Record<string, unknown>): string {
  const h = createHash('sha256');
  h.update(`format=${GRAPH_FORMAT_VERSION}\n`);
  h.update(JSON.stringify(options));
  h.update(readFileSync(join(modelDir, 'config.json')));
  const files = [...new Set([...tensors.values()].map((t) => t.file))].sort();
  for (const f of files) {
    const st = statSync(f);
    h.update(`${f}\n${st.size}\n${st.mtimeMs}\n`);
  }
  for (const t of [...tensors.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    h.update(`${t.name}:${t.dtype}:${t.shape.join('x')}:${t.offset}\n`);
  }
  return h.digest('hex').slice(0, 24);
}

export interface EnsureGraphOptions {
  maxPositions: number;
  ropeMode: RopeMode;
  weights?: WeightFormat;
  int4Compute?: 'int8' | 'fp32';
  head?: HeadFormat;
  kv?: KvFormat;
  onProgress?: (done: number, total: number, what: string) => void;
  /**
   * Build in a worker thread: seconds of quantising and writing never hold up the caller's event
   * loop (a server answering pages during its first build). In-process otherwise.
   */
  inWorker?: boolean;
}

/** Returns the path of the model's ONNX graph, building it on first use. */
export async function ensureGraph(
  modelDir: string,
  cfg: DecoderConfig,
  tensors: Map<string, TensorInfo>,
  opts: EnsureGraphOptions,
): Promise<{ path: string; built: boolean }> {
  const head = opts.head ?? defaultHeadFormat(opts.weights);
  const quantised = opts.weights === 'int4' || head !== 'fp32';
  const kv = opts.kv ?? defaultKvFormat(opts.weights, opts.ropeMode);
  const key = graphKey(modelDir, tensors, {
    maxPositions: opts.maxPositions,
    ropeMode: opts.ropeMode,
    weights: opts.weights ?? 'fp32',
    int4Compute: quantised ? (opts.int4Compute ?? 'int8') : undefined,
    head,
    kv: kv === 'fp32' ? undefined : kv,
  });
  const dir = join(cacheRoot(), 'graphs', key);
  const path = join(dir, 'model.onnx');
  if (existsSync(path) && existsSync(path + '.data')) return { path, built: false };
  // The build yields to the event loop, so a second load of the same graph can arrive meanwhile:
  // it waits for the first build rather than writing into the same folder.
  const running = building.get(dir);
  if (running) return running.then((r) => ({ ...r, built: false }));
  const build = (async () => {
    const build = { maxPositions: opts.maxPositions, ropeMode: opts.ropeMode, weights: opts.weights, int4Compute: opts.int4Compute, head, kv };
    if (opts.inWorker) await buildInWorker({ cfg, tensors, outDir: dir, opts: build }, opts.onProgress);
    else await buildDecoderGraph(cfg, tensors, dir, { ...build, onProgress: opts.onProgress });
    const meta: GraphMeta = { source: modelDir, format: GRAPH_FORMAT_VERSION, ropeMode: opts.ropeMode, weights: opts.weights ?? 'fp32', head, kv, maxPositions: opts.maxPositions, builtAt: new Date().toISOString() };
    writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta, null, 2));
    return { path, built: true };
  })().finally(() => building.delete(dir));
  building.set(dir, build);
  return build;
}

const building = new Map<string, Promise<{ path: string; built: boolean }>>();

const ERRORS: Record<string, new (message: string, o: { retryable: boolean }) => Error> = { ModelSourceError, UnsupportedModelError };

/** Runs one build in a worker thread; its error comes back as the same class with the same message. */
function buildInWorker(job: BuildJob, onProgress?: (done: number, total: number, what: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./graph-build-worker.mjs', import.meta.url), { workerData: job });
    let settled = false;
    const settle = (e?: Error) => {
      if (settled) return;
      settled = true;
      if (e) reject(e);
      else resolve();
    };
    worker.on('message', (m: BuildMessage) => {
      if (m.type === 'progress') onProgress?.(m.done, m.total, m.what);
      else if (m.type === 'done') settle();
      else settle(new (ERRORS[m.name] ?? BackendError)(m.message, { retryable: m.retryable }));
    });
    worker.on('error', (e) => settle(new BackendError(`the graph build failed: ${e.message}`, { cause: e })));
    worker.on('exit', (code) => settle(code === 0 ? undefined : new BackendError(`the graph build stopped (worker exit code ${code}; out of memory?)`)));
  });
}

/** What a built graph was made from, kept beside it so the cache can be listed and pruned. */
export interface GraphMeta {
  source: string;
  format: number;
  ropeMode: string;
  weights: string;
  /** Absent in graphs built before the head could be quantised (they are rebuilt: format 7). */
  head?: string;
  /** Absent in graphs built before the K/V cache could be int8 (they are rebuilt: format 13). */
  kv?: string;
  maxPositions: number;
  builtAt: string;
}

export interface CachedGraph {
  key: string;
  dir: string;
  bytes: number;
  meta: GraphMeta | null;
  /** Why `prune` would remove it, or null to keep. */
  stale: string | null;
}

/** Every built graph in the cache, with its size and whether it is stale. */
export function listGraphs(): CachedGraph[] {
  const root = join(cacheRoot(), 'graphs');
  if (!existsSync(root)) return [];
  return readdirSync(root).map((key) => {
    const dir = join(root, key);
    const bytes = readdirSync(dir).reduce((a, f) => a + statSync(join(dir, f)).size, 0);
    let meta: GraphMeta | null = null;
    try {
      meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
    } catch {
      /* unreadable or from before meta.json: stale */
    }
    // meta.json is written after a build completes: an interrupted build has none.
    const stale = !meta
      ? 'no record of its source (an old or interrupted build)'
      : meta.format !== GRAPH_FORMAT_VERSION
        ? `built by an older builder (format ${meta.format})`
        : !existsSync(meta.source)
          ? `its model folder ${meta.source} is gone`
          : null;
    return { key, dir, bytes, meta, stale };
  });
}

/** Removes stale graphs (or all, with `all`); returns what was removed. */
export function pruneGraphs(all = false): CachedGraph[] {
  const removed = listGraphs().filter((g) => all || g.stale);
  for (const g of removed) rmSync(g.dir, { recursive: true, force: true });
  return removed;
}
