import { RuntimeUsageError } from '../../errors.ts';
import { Arena, type ArenaSink } from './arena.ts';

/**
 * The engine-owned KV cache: which arena slot holds which block's token, for every block of every
 * stream. The K/V themselves live in an arena (see arena.ts) that this bookkeeping drives through
 * a sink: growth, slot moves and copies are sent to it in order, between graph runs.
 * A cache slot holds one token of one block; slots of different blocks interleave freely
 * (attention does not care about slot order). Keys are rotated at the block's `base` plus the
 * token's position within the block, so a block can appear at any offset in any view without being
 * touched.
 */
/** Arena growth per resize, and the slots it is counted in. */
const GROWTH = 1.25;
const GRANULE = 64;
const roundUp = (n: number, m: number) => Math.ceil(n / m) * m;

export class KvCache {
  private _capacity: number;
  /** Free slots, highest first, so pops reuse the lowest ones and the used range stays compact. */
  private free: number[] = [];
  private blocks = new Map<number, CacheBlock>();
  private nextId = 1;

  constructor(
    readonly numLayers: number,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly initialCapacity = 64,
    /** Default: an arena in this thread. */
    private readonly arena: ArenaSink = new Arena(numLayers, kvHeads, headDim),
    /** Bytes per cached K or V component with its share of a scale: 4 (float32), or an int8 code plus a scale per head vector. */
    readonly componentBytes = 4,
  ) {
    this._capacity = initialCapacity;
    arena.resize(initialCapacity);
    for (let s = initialCapacity - 1; s >= 0; s--) this.free.push(s);
  }

  get capacity(): number {
    return this._capacity;
  }

  /** K and V for one token across all layers, in bytes. */
  get bytesPerToken(): number {
    return this.numLayers * 2 * this.kvHeads * this.headDim * this.componentBytes;
  }

  get totalBytes(): number {
    return this._capacity * this.bytesPerToken;
  }

  get usedSlots(): number {
    return this._capacity - this.free.length;
  }

  /** Live blocks (created and not dropped). */
  get blockCount(): number {
    return this.blocks.size;
  }

  createBlock(name: string): CacheBlock {
    const b = new CacheBlock(this, this.nextId++, name);
    this.blocks.set(b.id, b);
    return b;
  }

  owns(block: CacheBlock): boolean {
    return this.blocks.get(block.id) === block;
  }

  /** @internal */
  allocate(n: number): number[] {
    if (this.free.length < n) this.grow(n - this.free.length);
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(this.free.pop()!);
    return out;
  }

  /** @internal */
  release(slots: number[]): void {
    this.free.push(...slots);
    this.free.sort((a, b) => b - a);
  }

  /** @internal */
  dropBlock(block: CacheBlock): void {
    this.blocks.delete(block.id);
  }

  /**
   * Grows the arena by a quarter (at least what is missing), in whole granules. Not by doubling:
   * a step reads the whole capacity, so a doubled arena just past half full made every step read
   * twice the cache it needed (a live turn's thinker step on Qwen3-0.6B shapes went from 30 to
   * 38 ms when 260 used slots sat in 512). The extra copies of finer growth are amortised: each
   * moves the arena once per quarter of growth.
   */
  private grow(missing: number): void {
    const old = this._capacity;
    const cap = roundUp(Math.max(old + missing, old * GROWTH), GRANULE);
    this.resize(cap);
    for (let s = cap - 1; s >= old; s--) this.free.unshift(s);
  }

  private resize(cap: number): void {
    this.arena.resize(cap);
    this._capacity = cap;
  }

  /**
   * Gives memory back after blocks were dropped: when at most a quarter of the arena is used, the
   * used slots move to the low end and the arena shrinks to twice what is used (a step reads the
   * whole capacity, so a long-running server must not keep paying for conversations that left).
   * The quarter and the twice leave room to grow again before the next resize either way. Returns
   * whether it shrank. Call only between graph runs: it moves slots under every block.
   */
  shrinkToFit(): boolean {
    const used = this.usedSlots;
    if (used > this._capacity / 4) return false;
    const cap = Math.max(this.initialCapacity, roundUp(2 * used, GRANULE));
    if (cap >= this._capacity) return false;
    // Free slots below the new end, lowest last so pop() hands out the lowest first.
    const low = this.free.filter((s) => s < cap).sort((a, b) => b - a);
    const from: number[] = [];
    const to: number[] = [];
    for (const blk of this.blocks.values()) {
      const slots = blk.slots;
      for (let i = 0; i < slots.length; i++) {
        if (slots[i] < cap) continue;
        from.push(slots[i]);
        slots[i] = low.pop()!;
        to.push(slots[i]);
      }
    }
    if (from.length) this.arena.copySlots(from, to);
    this.resize(cap);
    this.free = low;
    return true;
  }

  /** @internal */
  copySlots(from: number[], to: number[]): void {
    this.arena.copySlots(from, to);
  }
}

/**
 * A named run of tokens in the shared cache (a prompt, a stream's output, a user turn).
 * `tokens` are the ids whose K/V the cache holds, in order; `slots` where they live.
 */
export class CacheBlock {
  readonly tokens: number[] = [];
  /** @internal */
  readonly slots: number[] = [];
  /**
   * @internal The position its first token's key was rotated at: its offset in the view of the row
   * that first wrote it. Any base is exact; blocks that sit in a view exactly as they sat when they
   * were written share a rotated query (see causal-lm.ts), so a step scores far fewer view slots.
   * Undefined while empty.
   */
  base: number | undefined;
  private dropped = false;

  /** @internal */
  constructor(
    private readonly cache: KvCache,
    readonly id: number,
    readonly name: string,
  ) {}

  get length(): number {
    return this.tokens.length;
  }

  get isDropped(): boolean {
    return this.dropped;
  }

  /** Keeps the first `length` tokens and frees the rest. */
  trim(length: number): void {
    this.assertLive();
    if (!Number.isInteger(length) || length < 0) throw new RuntimeUsageError(`trim length must be a non-negative integer, got ${length}`);
    if (length >= this.tokens.length) return;
    this.cache.release(this.slots.splice(length));
    this.tokens.splice(length);
    if (length === 0) this.base = undefined;
  }

  clear(): void {
    this.trim(0);
  }

  /** A new block holding a copy of this block's tokens and K/V (same local positions). */
  fork(name: string): CacheBlock {
    this.assertLive();
    const copy = this.cache.createBlock(name);
    const slots = this.cache.allocate(this.slots.length);
    // allocate() may have grown the arena; slot indices stay valid across growth.
    this.cache.copySlots(this.slots, slots);
    copy.slots.push(...slots);
    copy.tokens.push(...this.tokens);
    copy.base = this.base;
    return copy;
  }

  /** Frees every slot and retires the block; using it afterwards is an error. */
  drop(): void {
    if (this.dropped) return;
    this.clear();
    this.dropped = true;
    this.cache.dropBlock(this);
  }

  /** @internal */
  assertLive(): void {
    if (this.dropped) throw new RuntimeUsageError(`cache block "${this.name}" was dropped`);
  }
}
