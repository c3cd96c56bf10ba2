import { RuntimeUsageError } from '../../errors.ts';
import type { FeedValue } from '../../backend/onnx.ts';
import type { DecoderConfig } from '../model/config.ts';
import { GRAPH_IO, MASKED, type KvFormat, type RopeMode } from '../graph/contract.ts';
import { componentBytes } from './arena.ts';
import { CacheBlock, KvCache } from './kv-cache.ts';
import type { StepRunner } from './step-runner.ts';

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

/**
 * A row as one graph run takes it: `visible[j]` is how many leading tokens of view block j the row
 * sees (default all). A long row's later pieces see the other blocks as they were when its call
 * began, so feeding it in pieces changes nothing it computes.
 */
interface RunRow extends ForwardRow {
  visible?: number[];
}

/** Default longest run of new tokens per row in one graph run (see `maxChunkTokens`). */
export const DEFAULT_CHUNK_TOKENS = 128;

export interface ForwardResult {
  /** Per row: logits [R_row, V] for the requested positions. */
  logits: Float32Array[];
}

/** Per-step timings, for benchmarks: where the time of the last step went. */
export interface StepTimings {
  /** Views, slots, masks and indices for the run. */
  prepareMs: number;
  /** The graph run, with the store of its new K/V into the arena (the runner does both). */
  runMs: number;
  /** The blocks taking their new tokens after the run. */
  commitMs: number;
  /** Rotated queries per row in that run (NS): blocks that sit in the view as written share one. */
  viewSlots: number;
}

/**
 * A decoder-only LM over the shared, engine-owned KV cache. Every call is one graph run, however
 * many rows and whatever their views.
 */
export class CausalLM {
  readonly cache: KvCache;
  lastStep: StepTimings = { prepareMs: 0, runMs: 0, commitMs: 0, viewSlots: 0 };
  /**
   * A row with more new tokens than this is fed in pieces of this size, one graph run each, so a
   * run's memory (scores and mask grow with S × (C + S)) is bounded by the piece, not the input,
   * and other callers' steps can run between the pieces.
   */
  maxChunkTokens = DEFAULT_CHUNK_TOKENS;
  private scratch = new Map<string, Float32Array | BigInt64Array>();

  constructor(
    readonly config: DecoderConfig,
    private readonly runner: StepRunner,
    readonly maxPositions: number,
    readonly ropeMode: RopeMode = 'rotate-query',
    readonly kv: KvFormat = 'fp32',
  ) {
    this.cache = new KvCache(config.numLayers, config.numKvHeads, config.headDim, 64, runner.arena, componentBytes(kv, config.headDim));
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

  /**
   * One batched step: every row sees the cache as it is when the call begins, plus its own new
   * tokens. Rows longer than `maxChunkTokens` are fed in pieces (see `forwardInPieces`).
   */
  forward(rows: ForwardRow[]): Promise<ForwardResult> {
    const chunk = Math.max(1, Math.floor(this.maxChunkTokens));
    if (rows.some((r) => r.tokens.length > chunk)) return this.forwardInPieces(rows, chunk);
    return this.run(rows);
  }

  /** One graph run at a time: runs share scratch buffers and each commits into the cache the next one reads. */
  private run(rows: RunRow[]): Promise<ForwardResult> {
    const next = this.queue.then(() => this.step(rows));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private queue: Promise<unknown> = Promise.resolve();

  /**
   * The first piece of every row runs as one batch; the rest of each long row then runs piece by
   * piece, each piece seeing the other view blocks only as far as they reached when the call
   * began. So the result equals one run of the whole rows, while no run holds more than `chunk`
   * new tokens per row. Each piece is queued on its own, so other conversations' steps are not held
   * up for the whole input.
   */
  private async forwardInPieces(rows: ForwardRow[], chunk: number): Promise<ForwardResult> {
    // The whole call is checked before any piece runs: a bad call leaves no trace.
    this.checkRows(rows);
    const wanted = rows.map((r, b) => this.wantedLogits(r, b));
    const got: Map<number, Float32Array>[] = rows.map(() => new Map());
    const V = this.vocabSize;
    const targets = rows.map((r) => r.view[r.view.length - 1]);
    const before = targets.map((t) => t.length);
    const piece = (b: number, from: number): RunRow => {
      const r = rows[b];
      const tokens = r.tokens.slice(from, from + chunk);
      const last = from + tokens.length >= r.tokens.length;
      // A probe's earlier pieces must be in the cache for its later ones; they are trimmed after.
      const persist = r.persist !== false || !last;
      const logits = wanted[b].filter((i) => i >= from && i < from + tokens.length).map((i) => i - from);
      return { ...r, tokens, logits, persist };
    };
    const take = async (pieces: { row: number; from: number; run: RunRow }[]) => {
      const { logits } = await this.run(pieces.map((p) => p.run));
      pieces.forEach((p, i) => {
        (p.run.logits as number[]).forEach((k, r) => got[p.row].set(p.from + k, logits[i].subarray(r * V, (r + 1) * V)));
      });
    };
    // What each row may see beyond its own writes: the view as it is before anything is fed.
    const visible = rows.map((r) => r.view.map((blk) => blk.length));
    try {
      await take(rows.map((_, b) => ({ row: b, from: 0, run: piece(b, 0) })));
      for (let b = 0; b < rows.length; b++) {
        for (let from = chunk; from < rows[b].tokens.length; from += chunk) {
          const run = piece(b, from);
          run.visible = visible[b].map((n, j) => (j === rows[b].view.length - 1 ? targets[b].length : n));
          await take([{ row: b, from, run }]);
        }
      }
    } catch (e) {
      // A failed piece: undo the pieces already committed, as one failed run would have left nothing.
      targets.forEach((t, b) => !t.isDropped && t.trim(before[b]));
      throw e;
    }
    rows.forEach((r, b) => r.persist === false && !targets[b].isDropped && targets[b].trim(before[b]));
    return {
      logits: wanted.map((idx, b) => {
        const out = new Float32Array(idx.length * V);
        idx.forEach((i, r) => out.set(got[b].get(i)!, r * V));
        return out;
      }),
    };
  }

  /** Everything about a call that can be wrong before it runs, with a message naming the row. */
  private checkRows(rows: RunRow[]): void {
    if (rows.length === 0) throw new RuntimeUsageError('forward needs at least one row');
    const targets = new Set<CacheBlock>();
    rows.forEach((row, b) => {
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
      const end = row.view.reduce((a, blk, j) => a + (j === row.view.length - 1 ? blk.length : Math.min(blk.length, row.visible?.[j] ?? blk.length)), 0) + row.tokens.length;
      if (end > this.maxPositions) {
        throw new RuntimeUsageError(`row ${b}: view would reach position ${end}, beyond this model's ${this.maxPositions}-position limit`);
      }
      this.wantedLogits(row, b);
    });
  }

  /**
   * Where an empty last block's keys start: right after the nearest earlier block that shows
   * tokens, at that block's shift, or at its own offset when that would pass the position limit
   * (bases stay below it, so every rotated position stays in the graph's tables).
   */
  private firstBase(view: CacheBlock[], lengths: number[], offsets: number[]): number {
    const last = view.length - 1;
    for (let j = last - 1; j >= 0; j--) {
      if (lengths[j] === 0) continue;
      const chained = view[j].base! + lengths[j];
      return chained < this.maxPositions ? chained : offsets[last];
    }
    return offsets[last];
  }

  private wantedLogits(row: ForwardRow, b: number): number[] {
    if (row.logits === 'all') return row.tokens.map((_, i) => i);
    if (Array.isArray(row.logits)) {
      for (const i of row.logits) if (!Number.isInteger(i) || i < 0 || i >= row.tokens.length) throw new RuntimeUsageError(`row ${b}: logits index ${i} out of range`);
      return row.logits;
    }
    return [row.tokens.length - 1];
  }

  private async step(rows: RunRow[]): Promise<ForwardResult> {
    const t0 = performance.now();
    // Between runs nothing reads the arena: the moment to give back what dropped blocks held.
    this.cache.shrinkToFit();
    this.checkRows(rows);
    const plans = rows.map((row, b) => {
      const target = row.view[row.view.length - 1];
      const lengths = row.view.map((blk, j) => Math.min(blk.length, row.visible?.[j] ?? blk.length));
      const offsets: number[] = [];
      let o = 0;
      for (const n of lengths) {
        offsets.push(o);
        o += n;
      }
      const want = this.wantedLogits(row, b);
      const writeOffset = offsets[offsets.length - 1];
      // rotate-query: a block's keys sit at base + local position; in this view they belong at
      // offset + local, so the block is shifted by offset - base, and every block with the same
      // shift is scored with one rotated query (one view slot). An empty target takes the shift of
      // the block before it, so blocks written one after another stay one slot wherever they go.
      const base = target.base ?? this.firstBase(row.view, lengths, offsets);
      const targetShift = writeOffset - base;
      const slotOf: number[] = [];
      const deltas: number[] = [];
      const slotByShift = new Map<number, number>();
      row.view.forEach((blk, j) => {
        if (lengths[j] === 0) return slotOf.push(-1);
        const shift = offsets[j] - blk.base!;
        let slot = slotByShift.get(shift);
        if (slot === undefined) {
          slot = deltas.length;
          slotByShift.set(shift, slot);
          // The query rotated for this slot sits at (its view position - offset + base): never
          // negative, and below twice the position limit (the graph's RoPE tables are that long).
          deltas.push(targetShift - shift);
        }
        slotOf.push(slot);
      });
      return { row, target, offsets, lengths, writeOffset, base, slotOf, deltas, want };
    });

    const B = rows.length;
    const S = Math.max(...rows.map((r) => r.tokens.length));
    // The new tokens' slots are taken before the run, so the runner stores their K/V as soon as the
    // run ends (a worker does it while this thread reads the logits) instead of waiting for a
    // second message. Taking them may grow the arena: the capacity is read after.
    const newSlots = plans.map((p) => (p.row.persist === false ? null : this.cache.allocate(p.row.tokens.length)));
    const writes: number[] = [];
    newSlots.forEach((slots, b) => slots?.forEach((slot, s) => writes.push(b, s, slot)));
    const NS = Math.max(1, ...plans.map((p) => p.deltas.length));
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
      const posBase = (rotateQuery ? p.base : p.writeOffset) + local0;
      for (let s = 0; s < S; s++) {
        if (s < n) ids[b * S + s] = BigInt(p.row.tokens[s]);
        // Padding repeats the last real position, so its (masked) rotated queries stay in the table.
        pos[b * S + s] = BigInt(posBase + Math.min(s, n - 1));
      }
      p.deltas.forEach((d, slot) => (delta[b * NS + slot] = BigInt(d)));
      visible.fill(MASKED);
      p.row.view.forEach((blk, j) => {
        const slots = blk.slots;
        for (let i = 0; i < p.lengths[j]; i++) {
          keyIndex[b * C + slots[i]] = BigInt(rotateQuery ? p.slotOf[j] : p.offsets[j] + i);
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

    const feeds: Record<string, FeedValue> = {
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
    const t1 = performance.now();
    let logitsAll: Float32Array;
    try {
      logitsAll = await this.runner.run(feeds, C, writes.length ? { writes: Int32Array.from(writes), S } : null);
    } catch (e) {
      // A failed run stored nothing: its slots go back and no block changes.
      newSlots.forEach((slots) => slots && this.cache.release(slots));
      throw e;
    }
    const t2 = performance.now();

    // Only now do the blocks take their new tokens (a failed run leaves no trace).
    plans.forEach((p, b) => {
      const slots = newSlots[b];
      if (!slots) return;
      // A block dropped while the run was in flight (its conversation left) takes nothing.
      if (p.target.isDropped) return this.cache.release(slots);
      p.target.slots.push(...slots);
      p.target.tokens.push(...p.row.tokens);
      p.target.base = p.base;
    });

    const V = this.vocabSize;
    // Views, not copies: each run's logits are a buffer of their own (600 KB a row on Qwen3).
    const logits = plans.map((p, b) => logitsAll.subarray(b * R * V, (b * R + p.want.length) * V));
    this.lastStep = { prepareMs: t1 - t0, runMs: t2 - t1, commitMs: performance.now() - t2, viewSlots: NS };
    return { logits };
  }

  async close(): Promise<void> {
    await this.runner.close();
  }
}
