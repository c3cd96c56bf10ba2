import { Worker } from 'node:worker_threads';
import { Session, type BackendOptions, type FeedValue } from '../../backend/onnx.ts';
import { BackendError } from '../../errors.ts';
import { Arena, type ArenaOp, type ArenaSink } from './arena.ts';
import { GRAPH_IO, newKvRows, type KvFormat } from '../graph/contract.ts';

/** The arena's shape, and how to run the graph over it. */
export interface RunnerSpec {
  graphPath: string;
  numLayers: number;
  kvHeads: number;
  headDim: number;
  /** How the arena stores K/V; the graph must have been built for the same (default fp32). */
  kv?: KvFormat;
  backend: BackendOptions;
  /** Linux: the threads that compute steps run at a lower priority than listening (worker runner only). */
  lowerPriority?: boolean;
  /**
   * A second graph over the same arena for calls of at least `minTokens` new tokens (all rows,
   * padding included): same inputs and outputs, other kernels (see load.ts).
   */
  prefill?: { graphPath: string; minTokens: number };
}

/** Where a run's new K/V go: (row, token, slot) triples; S = new tokens per row in that run. */
export interface KvWrites {
  writes: Int32Array;
  S: number;
}

/**
 * Runs decoder steps over the arena it holds: the cache's bookkeeping sends arena operations to
 * `arena`, and a step's feeds (everything but the arena) and where its new tokens go to `run`.
 * Operations and runs take effect in the order they were made.
 */
export interface StepRunner {
  readonly arena: ArenaSink;
  /**
   * One graph run with the arena as its past K/V (`capacity` slots); resolves to the logits output.
   * The new tokens' K/V are stored at `store` once the run succeeds (a failed run stores nothing),
   * before any later run.
   */
  run(feeds: Record<string, FeedValue>, capacity: number, store: KvWrites | null): Promise<Float32Array>;
  close(): Promise<void>;
}

/** The arena's feeds, by layer. */
function arenaFeeds(arena: Arena, capacity: number, feeds: Record<string, FeedValue>): Record<string, FeedValue> {
  const { kvHeads: K, headDim: D } = arena;
  const all = { ...feeds };
  for (let l = 0; l < arena.numLayers; l++) {
    const keys = arena.keys[l];
    const values = arena.values[l];
    if (keys instanceof Int8Array && values instanceof Int8Array) {
      all[GRAPH_IO.pastKey(l)] = { type: 'int8', data: keys, dims: [K, D, capacity] };
      all[GRAPH_IO.pastKeyScale(l)] = { type: 'float32', data: arena.keyScales[l], dims: [K, 1, capacity] };
      all[GRAPH_IO.pastValue(l)] = { type: 'int8', data: values, dims: [K, capacity, D] };
      all[GRAPH_IO.pastValueScale(l)] = { type: 'float32', data: arena.valueScales[l], dims: [K, 1, capacity] };
    } else if (keys instanceof Float32Array && values instanceof Float32Array) {
      all[GRAPH_IO.pastKey(l)] = { type: 'float32', data: keys, dims: [K, D, capacity] };
      all[GRAPH_IO.pastValue(l)] = { type: 'float32', data: values, dims: [K, capacity, D] };
    }
  }
  return all;
}

const OUTPUTS = [GRAPH_IO.logits, GRAPH_IO.newKv];

/** Graph and arena in this thread: onnxruntime-node runs a step synchronously, so this thread waits it out. */
export class LocalStepRunner implements StepRunner {
  readonly arena: Arena;

  private constructor(
    private readonly session: Session,
    private readonly prefill: { session: Session; minTokens: number } | null,
    spec: RunnerSpec,
  ) {
    this.arena = new Arena(spec.numLayers, spec.kvHeads, spec.headDim, spec.kv);
  }

  static async create(spec: RunnerSpec): Promise<LocalStepRunner> {
    const session = await Session.load(spec.graphPath, spec.backend);
    let prefill: Session | null = null;
    try {
      // Its own thread pool must not spin: its calls are long, so spinning saves them nothing, and
      // its idle threads spinning after a prompt would compete with the step graph's for the cores
      // (a design choice; the bench runs with it on and off were within the machine's noise).
      if (spec.prefill) prefill = await Session.load(spec.prefill.graphPath, { ...spec.backend, spinning: false });
    } catch (e) {
      await session.close();
      throw e;
    }
    return new LocalStepRunner(session, prefill && { session: prefill, minTokens: spec.prefill!.minTokens }, spec);
  }

  async run(feeds: Record<string, FeedValue>, capacity: number, store: KvWrites | null): Promise<Float32Array> {
    const { logits, storeKv } = await this.runOnly(feeds, capacity, store);
    storeKv();
    return logits;
  }

  /**
   * The run, and the store of its new K/V as a separate call: the worker answers with the logits
   * first and stores while its parent reads them. Nothing may run in between.
   */
  async runOnly(feeds: Record<string, FeedValue>, capacity: number, store: KvWrites | null): Promise<{ logits: Float32Array; storeKv: () => void }> {
    const [B, S] = feeds[GRAPH_IO.inputIds].dims;
    const session = this.prefill && B * S >= this.prefill.minTokens ? this.prefill.session : this.session;
    const out = await session.run(arenaFeeds(this.arena, capacity, feeds), OUTPUTS);
    const storeKv = () => {
      if (!store) return;
      const L = this.arena.numLayers;
      const kv = out[GRAPH_IO.newKv].data;
      const rows = kv.length / (2 * L); // B·K·S·D values a layer's keys (or values) take
      const part = (l: number, values: boolean) => kv.subarray(newKvRows(l, values) * rows, (newKvRows(l, values) + 1) * rows);
      const keys = Array.from({ length: L }, (_, l) => part(l, false));
      const values = Array.from({ length: L }, (_, l) => part(l, true));
      this.arena.writeTokens(keys, values, store.writes, store.S);
    };
    return { logits: out[GRAPH_IO.logits].data, storeKv };
  }

  async close(): Promise<void> {
    await Promise.all([this.session.close(), this.prefill?.session.close()]);
  }
}

/** Messages to and from the step worker (step-worker-job.ts). */
export type ToStepWorker =
  | { type: 'run'; id: number; ops: ArenaOp[]; feeds: Record<string, FeedValue>; capacity: number; store: KvWrites | null }
  | { type: 'close' };
export type FromStepWorker =
  | { type: 'ready' }
  | { type: 'load-failed'; message: string }
  | { type: 'ran'; id: number; logits: Float32Array }
  | { type: 'failed'; id: number; message: string }
  | { type: 'closed' };

/**
 * Graph and arena in a worker thread, so the thread that listens (VAD, sockets, recognition and
 * speech processes) is never held up by a step: onnxruntime-node runs a step synchronously on
 * whatever thread calls it. Only the step's small feeds and its logits cross; the K/V never do.
 */
export class WorkerStepRunner implements StepRunner {
  private ops: ArenaOp[] = [];
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (l: Float32Array) => void; reject: (e: Error) => void }>();
  private closing: Promise<void> | null = null;
  private onClosed: (() => void) | null = null;
  private dead: Error | null = null;
  readonly arena: ArenaSink = {
    resize: (cap) => this.ops.push({ op: 'resize', cap }),
    copySlots: (from, to) => this.ops.push({ op: 'copy', from: [...from], to: [...to] }),
  };

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: FromStepWorker) => {
      if (m.type === 'ran') this.settle(m.id)?.resolve(m.logits);
      else if (m.type === 'failed') this.settle(m.id)?.reject(new BackendError(m.message));
      else if (m.type === 'closed') this.onClosed?.();
    });
    const die = (e: Error) => {
      this.dead ??= e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    worker.on('error', (e) => die(new BackendError(`the model's worker thread failed: ${e.message}`, { cause: e })));
    worker.on('exit', (code) => die(new BackendError(`the model's worker thread stopped (exit code ${code})`)));
  }

  private settle(id: number) {
    const p = this.pending.get(id);
    this.pending.delete(id);
    return p;
  }

  static create(spec: RunnerSpec): Promise<WorkerStepRunner> {
    const worker = new Worker(new URL('./step-worker.mjs', import.meta.url), { workerData: spec });
    return new Promise((resolve, reject) => {
      const fail = (e: Error) => reject(e instanceof BackendError ? e : new BackendError(`the model's worker thread failed to start: ${e.message}`, { cause: e }));
      worker.once('error', fail);
      worker.once('message', (m: FromStepWorker) => {
        worker.off('error', fail);
        if (m.type === 'ready') resolve(new WorkerStepRunner(worker));
        else {
          void worker.terminate();
          reject(new BackendError(m.type === 'load-failed' ? m.message : `the model's worker thread said "${m.type}" before it was ready`));
        }
      });
    });
  }

  run(feeds: Record<string, FeedValue>, capacity: number, store: KvWrites | null): Promise<Float32Array> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const ops = this.ops;
    this.ops = [];
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: 'run', id, ops, feeds, capacity, store } satisfies ToStepWorker, store ? [store.writes.buffer as ArrayBuffer] : []);
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.dead) {
        const closed = new Promise<void>((r) => (this.onClosed = r));
        this.worker.postMessage({ type: 'close' } satisfies ToStepWorker);
        // A worker that never answers is terminated anyway; the timer must not keep the process alive.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([closed, new Promise((r) => (timer = setTimeout(r, 5000)))]);
        clearTimeout(timer);
      }
      await this.worker.terminate();
    })();
    return this.closing;
  }
}
