/**
 * What the runtime and the graph builder agree on, and nothing else: the graph's inputs and
 * outputs, the storage formats, the format version. The runtime imports this file, not the builder.
 */
/**
 * The graph contract (see docs/architecture.md, "Decoder graph"). Dims: B rows, S new tokens
 * per row, C cache capacity (past slots), NS view slots per row, R logit positions per row,
 * K kv heads, D head dim, G = heads / K.
 *
 * Two ways to let every row see every block at a position of its choosing (RoPE scores depend
 * only on the difference of query and key positions):
 *
 * - 'rotate-query' (default): keys are stored rotated at their block's base b_j (where it was
 *   first written) plus their position in the block. A row that sees block j at view offset o_j
 *   rotates its query for that block by its own shift minus the block's (shift = o - b). Blocks
 *   with equal shifts (those that sit as they were written) share one view slot. Per step: one
 *   small rotated query per view slot; the cache is only read.
 * - 'rotate-keys': keys are stored un-rotated and every step rotates the whole cache, per row,
 *   to the positions the row gives in `key_positions`. Simple, but an elementwise pass over
 *   B × cache per layer.
 */
export type RopeMode = 'rotate-query' | 'rotate-keys';
export const ROPE_MODES: readonly RopeMode[] = ['rotate-query', 'rotate-keys'];

export const GRAPH_IO = {
  inputIds: 'input_ids', // int64 [B,S]
  // int64 [B,S]: rotate-query: the new tokens' positions in their block (plus its base); rotate-keys: view positions
  positionIds: 'position_ids',
  slotDelta: 'slot_delta', // rotate-query: int64 [B,NS], added to position_ids to rotate the query for each view slot
  keySlot: 'key_slot', // rotate-query: int64 [B,C], view slot of each cache slot (any if masked)
  keyPositions: 'key_positions', // rotate-keys: int64 [B,C], view position of each cache slot
  attentionMask: 'attention_mask', // float32 [B,S,C+S]: additive, 0 visible, MASKED hidden
  logitsIndex: 'logits_index', // int64 [B,R]: which of the S new tokens get logits
  pastKey: (l: number) => `past_key.${l}`, // float32 or int8 [K,D,C] (transposed: keys as columns)
  pastKeyScale: (l: number) => `past_key_scale.${l}`, // int8 cache: float32 [K,1,C], one scale per cached key
  pastValue: (l: number) => `past_value.${l}`, // float32 or int8 [K,C,D]
  pastValueScale: (l: number) => `past_value_scale.${l}`, // int8 cache: float32 [K,1,C], one scale per cached value
  logits: 'logits', // float32 [B,R,V]
  // float32 [2·L·B,K,S,D]: every layer's new keys, then its new values, each [B,K,S,D] (newKvRows).
  // Keys: rotate-query: rotated at position_ids; rotate-keys: un-rotated. One output, not 2·L: each
  // output costs the step its own tensor (≈ 10 µs each, 0.5 ms a decode step on Qwen3-0.6B shapes).
  newKv: 'new_kv',
} as const;

/** Where layer l's new keys (or values) start in new_kv's data, in rows of [B,K,S,D]. */
export const newKvRows = (l: number, values: boolean): number => 2 * l + (values ? 1 : 0);

/** Additive mask value: finite so a fully masked padding row gives a uniform softmax, not NaN. */
export const MASKED = -1e30;

/** Bump when the graph layout changes, so cached graphs are rebuilt. */
export const GRAPH_FORMAT_VERSION = 17;

/**
 * How linear-layer weights are stored: float32; blockwise int4 (MatMulNBits), least to read per
 * token; or int8 per output channel with each activation row quantised to 8 bits (MatMulInteger),
 * MLAS's integer GEMM: on an AVX-512 VNNI CPU about twice MatMulNBits' rate once a call has a few
 * dozen rows, which makes it the prefill graph of an int4 model (see load.ts).
 */
export type WeightFormat = 'fp32' | 'int4' | 'int8';
export const WEIGHT_FORMATS: readonly WeightFormat[] = ['fp32', 'int4', 'int8'];
/** With int4 weights, what calls of many tokens (prefill) read: int8 copies of the weights, or the same int4 ones. */
export const PREFILL_WEIGHTS = ['int8', 'same'] as const;
export type PrefillWeights = (typeof PREFILL_WEIGHTS)[number];

/**
 * How the vocabulary-sized tables (token embeddings and LM head; one table when tied) are stored:
 * float32, or blockwise int8/int4 read by MatMulNBits for the head and GatherBlockQuantized for
 * the embeddings. A tied table is stored once and read by both.
 */
export type HeadFormat = 'fp32' | 'int8' | 'int4';
export const HEAD_FORMATS: readonly HeadFormat[] = ['fp32', 'int8', 'int4'];
/** The head follows the linear weights unless asked otherwise: a step reads it whole. */
export const defaultHeadFormat = (weights: WeightFormat | undefined): HeadFormat => (weights === 'int4' ? 'int4' : weights === 'int8' ? 'int8' : 'fp32');

/**
 * How the K/V cache is stored: float32, or int8 with one float scale per token and kv head for
 * each key and each value. Scores: each query row is quantised to 8 bits around 128 (its own
 * scale) and meets the keys in MLAS's integer kernel (MatMulInteger, u8 × s8). Values: each
 * probability is multiplied by its value's scale, the row quantised to 0..255, and weighs the
 * value codes in the same kernel. A step reads a quarter of the cache's bytes, and the float
 * kernel packed every key and value it read: at 2 048 tokens a decode step takes about 60 % of the
 * float one. rotate-query only (rotate-keys rotates the stored keys in float every step).
 */
export type KvFormat = 'fp32' | 'int8';
export const KV_FORMATS: readonly KvFormat[] = ['fp32', 'int8'];
/** An int8 cache comes with quantised weights (already approximate), a float one with float weights (exact). */
export const defaultKvFormat = (weights: WeightFormat | undefined, ropeMode: RopeMode = 'rotate-query'): KvFormat =>
  (weights === 'int4' || weights === 'int8') && ropeMode === 'rotate-query' ? 'int8' : 'fp32';
