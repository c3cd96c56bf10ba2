import type { DecoderConfig } from '../model/config.ts';
import type { HeadFormat } from './contract.ts';
import { DT, type GraphBuilder } from './onnx-builder.ts';
import { GRAPH_BLOCK, quantizeForGraph, type QuantBits } from './quantize.ts';

/** Lets timers and sockets run between layers: a server stays responsive while its graph builds. */
export const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/** Tensor rows streamed in pieces, by HF name, checked against the shape given. */
export type TensorPieces = (name: string, shape: number[]) => Iterable<Float32Array>;

/** y = x·Wᵀ for W [n, k] stored as blockwise codes and scales (see quantize.ts). */
export function matMulNBits(g: GraphBuilder, x: string, codes: string, scales: string, zeroPoints: string | null, k: number, n: number, bits: QuantBits, accuracyLevel: number): string {
  const inputs = zeroPoints ? [x, codes, scales, zeroPoints] : [x, codes, scales];
  return g.o('MatMulNBits', inputs, { K: k, N: n, bits, block_size: GRAPH_BLOCK[bits], accuracy_level: accuracyLevel }, 'com.microsoft');
}

/**
 * The token embeddings and the LM head: the two largest tensors by far, streamed in row pieces
 * (a 600 MB table never sits whole in memory). Quantised, each piece is packed as it is read.
 */
export async function vocabTables(
  g: GraphBuilder,
  cfg: DecoderConfig,
  pieces: TensorPieces,
  format: HeadFormat,
  accuracyLevel: number,
): Promise<{ embed: (ids: string) => string; head: (flat: string) => string }> {
  const { hiddenSize: H, vocabSize: V } = cfg;
  const EMBED = 'model.embed_tokens.weight';
  const HEAD = cfg.tieWordEmbeddings ? EMBED : 'lm_head.weight';
  if (format === 'fp32') {
    const embedT = await g.streamWeight(EMBED, [V, H], pieces(EMBED, [V, H]), yieldToLoop);
    const headT = cfg.tieWordEmbeddings ? embedT : await g.streamWeight(HEAD, [V, H], pieces(HEAD, [V, H]), yieldToLoop);
    return {
      embed: (ids) => g.o('Gather', [embedT, ids], { axis: 0 }),
      head: (flat) => g.o('Gemm', [flat, headT], { transB: 1 }),
    };
  }
  const bits: QuantBits = format === 'int8' ? 8 : 4;
  const block = GRAPH_BLOCK[bits];
  const kBlocks = Math.ceil(H / block);
  const blob = (block * bits) / 8;
  const zpBytes = Math.ceil(kBlocks / 2);
  /** Packs one table: codes [V, kBlocks, blob] streamed, scales [V, kBlocks] (and int4's zero points [V, zpBytes]) after them. */
  const table = async (name: string): Promise<{ codes: string; scales: string; zeroPoints: string | null }> => {
    const scaleParts: Float32Array[] = [];
    const zpParts: Uint8Array[] = [];
    const packedPieces = function* () {
      for (const rows of pieces(name, [V, H])) {
        const q = quantizeForGraph(rows, rows.length / H, H, bits);
        scaleParts.push(q.scales);
        if (q.zeroPoints) zpParts.push(q.zeroPoints);
        yield q.packed;
      }
    };
    const codes = await g.streamBytes(`${name}.q${bits}`, DT.UINT8, 1, [V, kBlocks, blob], packedPieces(), yieldToLoop);
    const concat = <T extends Float32Array | Uint8Array>(parts: T[], all: T): T => {
      let at = 0;
      for (const p of parts) {
        all.set(p, at);
        at += p.length;
      }
      return all;
    };
    const scales = g.weight(`${name}.q${bits}.scales`, concat(scaleParts, new Float32Array(V * kBlocks)), [V, kBlocks]);
    const zeroPoints = zpParts.length ? g.bytes(`${name}.q${bits}.zp`, DT.UINT8, concat(zpParts, new Uint8Array(V * zpBytes)), [V, zpBytes]) : null;
    return { codes, scales, zeroPoints };
  };
  const embedT = await table(EMBED);
  const headT = cfg.tieWordEmbeddings ? embedT : await table(HEAD);
  // GatherBlockQuantized reads the codes as [V, kBlocks · blob] bytes with blocks along that last
  // axis; MatMulNBits reads the same bytes as [V, kBlocks, blob] and the zero points flat.
  const gatherCodes = g.alias(`${EMBED}.q${bits}.2d`, embedT.codes, [V, kBlocks * blob]);
  const gatherInputs = embedT.zeroPoints ? [gatherCodes, '', embedT.scales, embedT.zeroPoints] : [gatherCodes, '', embedT.scales];
  const headZp = headT.zeroPoints && g.alias(`${headT.zeroPoints}.flat`, headT.zeroPoints, [V * zpBytes]);
  const padded = kBlocks * block;
  return {
    embed: (ids) => {
      const inputs = [...gatherInputs];
      inputs[1] = ids;
      const rows = g.o('GatherBlockQuantized', inputs, { gather_axis: 0, quantize_axis: 1, block_size: block, bits }, 'com.microsoft'); // [B,S,padded]
      return padded === H ? rows : g.o('Slice', [rows, g.constInt64([0]), g.constInt64([H]), g.constInt64([-1])]);
    },
    head: (flat) => matMulNBits(g, flat, headT.codes, headT.scales, headZp, H, V, bits, accuracyLevel),
  };
}
