import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ModelSourceError, UnsupportedModelError } from '../../errors.ts';
import { bf16ToF32, f16ToF32 } from './half.ts';

/**
 * The checkpoint's tensor `name`, checked against the shape the config implies; `modelType` names
 * the architecture in the error when it is missing.
 */
export function checkedTensor(tensors: Map<string, TensorInfo>, name: string, shape: number[], modelType: string): TensorInfo {
  const info = tensors.get(name);
  if (!info) throw new UnsupportedModelError(`checkpoint lacks tensor "${name}" that a ${modelType} model must have`);
  if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
    throw new UnsupportedModelError(`tensor "${name}" has shape ${JSON.stringify(info.shape)}, config implies ${JSON.stringify(shape)}`);
  }
  return info;
}

/** Dtypes we can turn into float32 weights. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';
const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  file: string;
  /** Absolute byte offset of the data inside `file`. */
  offset: number;
  byteLength: number;
}

/** Reads and validates a safetensors header without touching the tensor data. */
export function readSafetensorsHeader(file: string): TensorInfo[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new ModelSourceError(`cannot open ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const size = fstatSync(fd).size;
    const lenBuf = Buffer.alloc(8);
    if (size < 8 || readSync(fd, lenBuf, 0, 8, 0) !== 8) {
      throw new ModelSourceError(`${file} is not a safetensors file: shorter than its 8-byte header length`);
    }
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen <= 1 || headerLen > MAX_HEADER_BYTES || 8 + headerLen > size) {
      throw new ModelSourceError(
        `${file} has a corrupt safetensors header: declared header length ${headerLen} does not fit a ${size}-byte file`,
      );
    }
    const headerBuf = Buffer.alloc(headerLen);
    readSync(fd, headerBuf, 0, headerLen, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(headerBuf.toString('utf8'));
    } catch (e) {
      throw new ModelSourceError(`${file} has a corrupt safetensors header: not valid JSON`, { cause: e });
    }
    const dataStart = 8 + headerLen;
    const out: TensorInfo[] = [];
    for (const [name, meta] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const m = meta as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const bytes = typeof m.dtype === 'string' ? DTYPE_BYTES[m.dtype] : undefined;
      const shape = m.shape;
      const offs = m.data_offsets;
      if (
        bytes === undefined ||
        !Array.isArray(shape) ||
        !shape.every((d) => Number.isInteger(d) && d >= 0) ||
        !Array.isArray(offs) ||
        offs.length !== 2 ||
        !offs.every((d) => Number.isInteger(d) && d >= 0)
      ) {
        throw new ModelSourceError(`${file} has a corrupt safetensors header entry for "${name}"`);
      }
      const [begin, end] = offs as [number, number];
      const count = (shape as number[]).reduce((a, b) => a * b, 1);
      if (end - begin !== count * bytes || dataStart + end > size) {
        throw new ModelSourceError(
          `${file}: tensor "${name}" declares ${end - begin} bytes at ${begin}, but shape ${JSON.stringify(shape)} of ${m.dtype} needs ${count * bytes} and the file has ${size - dataStart} data bytes`,
        );
      }
      out.push({ name, dtype: m.dtype as string, shape: shape as number[], file, offset: dataStart + begin, byteLength: end - begin });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** Lists every tensor of a model folder: model.safetensors, or the shards of model.safetensors.index.json. */
export function listModelTensors(dir: string): Map<string, TensorInfo> {
  const indexPath = join(dir, 'model.safetensors.index.json');
  const single = join(dir, 'model.safetensors');
  let files: string[];
  if (existsSync(indexPath)) {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(readFileSync(indexPath, 'utf8'));
    } catch (e) {
      throw new ModelSourceError(`${indexPath} is not valid JSON`, { cause: e });
    }
    if (!index.weight_map || typeof index.weight_map !== 'object') {
      throw new ModelSourceError(`${indexPath} has no weight_map`);
    }
    files = [...new Set(Object.values(index.weight_map))].map((f) => join(dir, f));
    const missing = files.filter((f) => !existsSync(f));
    if (missing.length) throw new ModelSourceError(`missing weight shards: ${missing.join(', ')}`);
  } else if (existsSync(single)) {
    files = [single];
  } else {
    throw new ModelSourceError(
      `${dir} has no model.safetensors (nor model.safetensors.index.json); a Hugging Face model folder with safetensors weights is needed`,
    );
  }
  const map = new Map<string, TensorInfo>();
  for (const f of files) for (const t of readSafetensorsHeader(f)) map.set(t.name, t);
  return map;
}

/** Reads one tensor as float32, whatever floating dtype it is stored in. */
export function readTensorF32(info: TensorInfo): Float32Array {
  return readElementsF32(info, 0, info.shape.reduce((a, b) => a * b, 1));
}

/**
 * A large tensor as float32 pieces of whole rows (first axis), about `pieceElements` each, so a
 * caller can write each piece and let other work run in between instead of holding it all.
 */
export function* readTensorF32Pieces(info: TensorInfo, pieceElements = 1 << 22): Generator<Float32Array> {
  const rows = info.shape[0] ?? 1;
  const rowElements = info.shape.slice(1).reduce((a, b) => a * b, 1);
  const rowsPerPiece = Math.max(1, Math.floor(pieceElements / rowElements));
  for (let r = 0; r < rows; r += rowsPerPiece) {
    yield readElementsF32(info, r * rowElements, Math.min(rowsPerPiece, rows - r) * rowElements);
  }
}

const BYTES_PER_ELEMENT: Record<string, number> = { F32: 4, BF16: 2, F16: 2 };

/** Elements [first, first + count) of a tensor, converted to float32. */
function readElementsF32(info: TensorInfo, first: number, count: number): Float32Array {
  const width = BYTES_PER_ELEMENT[info.dtype];
  if (!width) throw new ModelSourceError(`tensor "${info.name}" has dtype ${info.dtype}; only F32, F16 and BF16 weights are supported`);
  const total = info.shape.reduce((a, b) => a * b, 1);
  if (info.byteLength !== total * width) {
    throw new ModelSourceError(`${info.file}: tensor "${info.name}" holds ${info.byteLength} bytes where shape ${JSON.stringify(info.shape)} of ${info.dtype} needs ${total * width}`);
  }
  // An aligned buffer of its own (never Buffer's pool), so typed views over it are legal.
  const raw = new Uint8Array(count * width);
  const fd = openSync(info.file, 'r');
  try {
    let got = 0;
    const start = info.offset + first * width;
    while (got < raw.byteLength) {
      const n = readSync(fd, raw, got, raw.byteLength - got, start + got);
      if (n <= 0) throw new ModelSourceError(`${info.file}: unexpected end of file reading "${info.name}"`);
      got += n;
    }
  } finally {
    closeSync(fd);
  }
  if (info.dtype === 'F32') return new Float32Array(raw.buffer, 0, count);
  const out = new Float32Array(count);
  (info.dtype === 'BF16' ? bf16ToF32 : f16ToF32)(new Uint16Array(raw.buffer, 0, count), out);
  return out;
}

/** Writes tensors to a safetensors file, in the given order (deterministic bytes). */
export function writeSafetensors(
  file: string,
  tensors: { name: string; dtype: SafetensorsDtype; shape: number[]; data: () => Uint8Array }[],
  metadata: Record<string, string> = { format: 'pt' },
): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBytes.length));
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, headerBytes);
    // Data is produced one tensor at a time so a large model never sits in memory whole.
    for (const t of tensors) {
      const data = t.data();
      const expected = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
      if (data.byteLength !== expected) throw new Error(`tensor ${t.name}: ${data.byteLength} bytes, shape needs ${expected}`);
      writeSync(fd, data);
    }
  } finally {
    closeSync(fd);
  }
}
