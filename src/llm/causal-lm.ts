import { RuntimeUsageError } from '../errors.ts';
import type { Session } from '../backend/onnx.ts';
import type { DecoderConfig } from './config.ts';
import { GRAPH_IO, MASKED, type RopeMode } from './decoder-graph.ts';
import { CacheBlock, KvCache } from './kv-cache.ts';

/**
 * One row of a batched step. The row attends to the blocks of `view` in order, placed one after
 * another from position 0; its new `tokens` are appended to the last block of the view.
 */
export interface ForwardRow {
  view: CacheBlock[];
  tokens: number[];
  /** Which new tokens get logits: the last (default), all, or these indices into `tokens`. */
  logits?: 'last' | 'all' | number[];
  /** Keep the new tokens in the cache (default true). A probe that must leave no trace sets false. */
  persist?: boolean;
}

export interface ForwardResult {
  /** Per row: logits [R_row, V] for the requested positions. */
  logits: Float32Array[];
}

/** Per-step timings, for benchmarks: where the time of the last step went. */
export interface StepTimings {
  prepareMs: number;
  runMs: number;
  commitMs: number;
}

/**
 * A decoder-only LM over the shared, engine-owned KV cache. Every call is one graph run, however
 * many rows and whatever their views.
 */
export class CausalLM {
  readonly cache: KvCache;
  lastStep: StepTimings = { prepareMs: 0, runMs: 0, commitMs: 0 };
  private scratch = new Map<string, Float32Array | BigInt64Array>();
  private readonly outputNames: string[];

  constructor(
    readonly config: DecoderConfig,
    private readonly session: Session,
    readonly maxPositions: number,
    readonly ropeMode: RopeMode = 'rotate-query',
  ) {
    this.cache = new KvCache(config.numLayers, config.numKvHeads, config.headDim);
    this.outputNames = [GRAPH_IO.logits];
    for (let l = 0; l < config.numLayers; l++) this.outputNames.push(GRAPH_IO.newKey(l), GRAPH_IO.newValue(l));
  }

  get vocabSize(): number {
    return this.config.vocabSize;
  }

  /** Reuses typed arrays between steps of the same shape (allocate once, reuse every step). */
  private buf<T extends Float32Array | BigInt64Array>(key: string, n: number, make: (n: number) => T): T {
    const k = `${key}:${n}`;
    let b = this.scratch.get(k) as T | undefined;
    if (!b) {
      for (const old of this.scratch.keys()) if (old.startsWith(`${key}:`)) this.scratch.delete(old);
      b = make(n);
      this.scratch.set(k, b);
    }
    return b;
  }

  /** One step at a time: steps share scratch buffers and each commits into the cache the next one reads. */
  forward(rows: ForwardRow[]): Promise<ForwardResult> {
    const next = this.queue.then(() => this.step(rows));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private queue: Promise<unknown> = Promise.resolve();

  private async step(rows: ForwardRow[]): Promise<ForwardResult> {
    const t0 = performance.now();
    if (rows.length === 0) throw new RuntimeUsageError('forward needs at least one row');
    const targets = new Set<CacheBlock>();
    const plans = rows.map((row, b) => {
      if (!row.view.length) throw new RuntimeUsageError(`row ${b}: empty view`);
      if (!row.tokens.length) throw new RuntimeUsageError(`row ${b}: no tokens`);
      const seen = new Set<CacheBlock>();
      for (const blk of row.view) {
        blk.assertLive();
        if (!this.cache.owns(blk)) throw new RuntimeUsageError(`row ${b}: block "${blk.name}" belongs to another cache`);
        if (seen.has(blk)) throw new RuntimeUsageError(`row ${b}: block "${blk.name}" appears twice in the view`);
        seen.add(blk);
      }
      for (const t of row.tokens) {
        if (!Number.isInteger(t) || t < 0 || t >= this.vocabSize) throw new RuntimeUsageError(`row ${b}: token id ${t} outside vocab [0, ${this.vocabSize})`);
      }
      const target = row.view[row.view.length - 1];
      if (row.persist !== false) {
        if (targets.has(target)) throw new RuntimeUsageError(`two rows append to block "${target.name}" in one step`);
        targets.add(target);
      }
      const offsets: number[] = [];
      let o = 0;
      for (const blk of row.view) {
        offsets.push(o);
        o += blk.length;
      }
      const end = o + row.tokens.length;
      if (end > this.maxPositions) {
        throw new RuntimeUsageError(`row ${b}: view would reach position ${end}, beyond this model's ${this.maxPositions}-position limit`);
      }
      let want: number[];
      if (row.logits === 'all') want = row.tokens.map((_, i) => i);
      else if (Array.isArray(row.logits)) {
        want = row.logits;
        for (const i of want) if (!Number.isInteger(i) || i < 0 || i >= row.tokens.length) throw new RuntimeUsageError(`row ${b}: logits index ${i} out of range`);
      } else want = [row.tokens.length - 1];
      return { row, target, offsets, writeOffset: offsets[offsets.length - 1], want };
    });

    const B = rows.length;
    const S = Math.max(...rows.map((r) => r.tokens.length));
    const NS = Math.max(...rows.map((r) => r.view.length));
    const R = Math.max(1, ...plans.map((p) => p.want.length));
    const C = this.cache.capacity;
    const CS = C + S;

    const rotateQuery = this.ropeMode === 'rotate-query';
    const ids = this.buf('ids', B * S, (n) => new BigInt64Array(n)).fill(0n);
    const pos = this.buf('pos', B * S, (n) => new BigInt64Array(n)).fill(0n);
    const delta = this.buf('delta', B * NS, (n) => new BigInt64Array(n)).fill(0n);
    // rotate-query: view slot of each cache slot; rotate-keys: its position in the row's view.
    const keyIndex = this.buf('keyIndex', B * C, (n) => new BigInt64Array(n)).fill(0n);
    const mask = this.buf('mask', B * S * CS, (n) => new Float32Array(n)).fill(MASKED);
    const logitsIndex = this.buf('logitsIndex', B * R, (n) => new BigInt64Array(n)).fill(0n);
    const visible = this.buf('visible', C, (m) => new Float32Array(m));

    plans.forEach((p, b) => {
      const n = p.row.tokens.length;
      const local0 = p.target.length;
      const posBase = rotateQuery ? local0 : p.writeOffset + local0;
      for (let s = 0; s < n; s++) {
        ids[b * S + s] = BigInt(p.row.tokens[s]);
        pos[b * S + s] = BigInt(posBase + s);
      }
      visible.fill(MASKED);
      p.row.view.forEach((blk, j) => {
        delta[b * NS + j] = BigInt(p.writeOffset - p.offsets[j]);
        const slots = blk.slots;
        for (let i = 0; i < slots.length; i++) {
          keyIndex[b * C + slots[i]] = BigInt(rotateQuery ? j : p.offsets[j] + i);
          visible[slots[i]] = 0;
        }
      });
      for (let s = 0; s < S; s++) {
        const rowBase = (b * S + s) * CS;
        mask.set(visible, rowBase);
        for (let s2 = 0; s2 <= Math.min(s, n - 1); s2++) mask[rowBase + C + s2] = 0;
      }
      p.want.forEach((i, r) => (logitsIndex[b * R + r] = BigInt(i)));
    });

    const feeds: Parameters<Session['run']>[0] = {
      [GRAPH_IO.inputIds]: { type: 'int64', data: ids, dims: [B, S] },
      [GRAPH_IO.positionIds]: { type: 'int64', data: pos, dims: [B, S] },
      [GRAPH_IO.attentionMask]: { type: 'float32', data: mask, dims: [B, S, CS] },
      [GRAPH_IO.logitsIndex]: { type: 'int64', data: logitsIndex, dims: [B, R] },
    };
    if (rotateQuery) {
      feeds[GRAPH_IO.slotDelta] = { type: 'int64', data: delta, dims: [B, NS] };
      feeds[GRAPH_IO.keySlot] = { type: 'int64', data: keyIndex, dims: [B, C] };
    } else {
      feeds[GRAPH_IO.keyPositions] = { type: 'int64', data: keyIndex, dims: [B, C] };
    }
    const { numKvHeads: K, headDim: D } = this.config;
    for (let l = 0; l < this.config.numLayers; l++) {
      feeds[GRAPH_IO.pastKey(l)] = { type: 'float32', data: this.cache.keys[l], dims: [K, D, C] };
      feeds[GRAPH_IO.pastValue(l)] = { type: 'float32', data: this.cache.values[l], dims: [K, C, D] };
    }
    const t1 = performance.now();
    const out = await this.session.run(feeds, this.outputNames);
    const t2 = performance.now();

    // Commit the new tokens' K/V into their blocks (only now: a failed run leaves no trace).
    plans.forEach((p, b) => {
      if (p.row.persist === false) return;
      const n = p.row.tokens.length;
      const slots = this.cache.allocate(n);
      for (let l = 0; l < this.config.numLayers; l++) {
        const k = out[GRAPH_IO.newKey(l)].data;
        const v = out[GRAPH_IO.newValue(l)].data;
        for (let s = 0; s < n; s++) this.cache.writeToken(l, slots[s], k, v, (b * K * S + s) * D, S * D);
      }
      p.target.slots.push(...slots);
      p.target.tokens.push(...p.row.tokens);
    });

    const V = this.vocabSize;
    const logitsAll = out[GRAPH_IO.logits].data;
    const logits = plans.map((p, b) => logitsAll.slice(b * R * V, (b * R + p.want.length) * V));
    this.lastStep = { prepareMs: t1 - t0, runMs: t2 - t1, commitMs: performance.now() - t2 };
    return { logits };
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}
