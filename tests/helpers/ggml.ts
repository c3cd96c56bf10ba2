/** Readers of ggml's formats for tests: what llama.cpp makes of the bytes our GGUF export writes. */

/** An IEEE half (as its 16 bits) in float. */
export function halfToFloat(h: number): number {
  const e = (h >> 10) & 31;
  const m = h & 1023;
  const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

/** q4_0 bytes back to float: per 32 values an fp16 d, then codes − 8 (the block's first half in the low nibbles). */
export function readQ4_0(bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let blk = 0; blk < n / 32; blk++) {
    const d = halfToFloat(bytes[blk * 18] | (bytes[blk * 18 + 1] << 8));
    for (let j = 0; j < 16; j++) {
      out[blk * 32 + j] = ((bytes[blk * 18 + 2 + j] & 15) - 8) * d;
      out[blk * 32 + 16 + j] = ((bytes[blk * 18 + 2 + j] >> 4) - 8) * d;
    }
  }
  return out;
}
