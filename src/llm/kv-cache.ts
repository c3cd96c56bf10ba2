import { RuntimeUsageError } from '../errors.ts';

/**
 * The engine-owned KV cache: one arena per layer, shared by every block and every stream.
 * Layout per layer (what the graph reads directly, no copy):
 *   keys   [K, D, capacity]  (transposed, so Q·Kᵀ is a plain MatMul)
 *   values [K, capacity, D]
 * A cache slot holds one token of one block; slots of different blocks interleave freely
 * (attention does not care about slot order). Keys are rotated at the token's position *within
 * its block*, so a block can appear at any offset in any view without being touched.
 */
export class KvCache {
  readonly keys: Float32Array[] = [];
  readonly values: Float32Array[] = [];
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
  ) {
    this._capacity = initialCapacity;
    for (let l = 0; l < numLayers; l++) {
      this.keys.push(new Float32Array(kvHeads * headDim * initialCapacity));
      this.values.push(new Float32Array(kvHeads * initialCapacity * headDim));
    }
    for (let s = initialCapacity - 1; s >= 0; s--) this.free.push(s);
  }

  get capacity(): number {
    return this._capacity;
  }

  /** K and V for one token across all layers, in bytes (float32). */
  get bytesPerToken(): number {
    return this.numLayers * 2 * this.kvHeads * this.headDim * 4;
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
    while (this.free.length < n) this.grow();
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

  /** Doubles the arena (the only growth it ever does). */
  private grow(): void {
    const old = this._capacity;
    this.resize(old * 2);
    for (let s = old * 2 - 1; s >= old; s--) this.free.unshift(s);
  }

  /** A new arena of `cap` slots holding the first min(old, cap) slots of the old one, strided layouts kept. */
  private resize(cap: number): void {
    const old = this._capacity;
    const n = Math.min(old, cap);
    const { kvHeads: K, headDim: D } = this;
    for (let l = 0; l < this.numLayers; l++) {
      const k = new Float32Array(K * D * cap);
      const ks = this.keys[l];
      for (let row = 0; row < K * D; row++) k.set(ks.subarray(row * old, row * old + n), row * cap);
      this.keys[l] = k;
      const v = new Float32Array(K * cap * D);
      const vs = this.values[l];
      for (let h = 0; h < K; h++) v.set(vs.subarray(h * old * D, (h * old + n) * D), h * cap * D);
      this.values[l] = v;
    }
    this._capacity = cap;
  }

  /**
   * Gives memory back after blocks were dropped: while at most a quarter of the arena is used,
   * the used slots move to its low half and the arena halves (a step reads the whole capacity, so
   * a long-running server must not keep paying for conversations that left). The quarter, not
   * the half, leaves room to grow again before the next doubling. Returns whether it shrank.
   * Call only between graph runs: it moves slots under every block.
   */
  shrinkToFit(): boolean {
    const used = this.usedSlots;
    let cap = this._capacity;
    while (cap > this.initialCapacity && used <= cap / 4) cap /= 2;
    if (cap === this._capacity) return false;
    // Free slots below the new end, lowest last so pop() hands out the lowest first.
    const low = this.free.filter((s) => s < cap).sort((a, b) => b - a);
    for (const blk of this.blocks.values()) {
      const slots = blk.slots;
      for (let i = 0; i < slots.length; i++) {
        if (slots[i] < cap) continue;
        const to = low.pop()!;
        this.copySlot(slots[i], to);
        slots[i] = to;
      }
    }
    this.resize(cap);
    this.free = low;
    return true;
  }

  /**
   * Writes one token's K/V for one layer. `k` and `v` are [K, D] taken from a graph output
   * laid out [B,K,S,D]: `base` is the offset of (b, 0, s, 0) and `headStride` = S*D.
   * @internal
   */
  writeToken(layer: number, slot: number, k: Float32Array, v: Float32Array, base: number, headStride: number): void {
    const { kvHeads: K, headDim: D } = this;
    const cap = this._capacity;
    const keys = this.keys[layer];
    const values = this.values[layer];
    for (let h = 0; h < K; h++) {
      const src = base + h * headStride;
      const kRow = h * D * cap + slot;
      for (let d = 0; d < D; d++) keys[kRow + d * cap] = k[src + d];
      values.set(v.subarray(src, src + D), (h * cap + slot) * D);
    }
  }

  /** @internal */
  copySlot(from: number, to: number): void {
    const { kvHeads: K, headDim: D } = this;
    const cap = this._capacity;
    for (let l = 0; l < this.numLayers; l++) {
      const keys = this.keys[l];
      const values = this.values[l];
      for (let hd = 0; hd < K * D; hd++) keys[hd * cap + to] = keys[hd * cap + from];
      for (let h = 0; h < K; h++) values.copyWithin((h * cap + to) * D, (h * cap + from) * D, (h * cap + from + 1) * D);
    }
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
    for (let i = 0; i < slots.length; i++) this.cache.copySlot(this.slots[i], slots[i]);
    copy.slots.push(...slots);
    copy.tokens.push(...this.tokens);
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
