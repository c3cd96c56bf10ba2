import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';

const { onnx } = onnxProto;
// eslint-disable-next-line @typescript-eslint/no-namespace
declare namespace onnx {
  type ITensorProto = OnnxTypes.ITensorProto;
  type INodeProto = OnnxTypes.INodeProto;
  type IValueInfoProto = OnnxTypes.IValueInfoProto;
  type IAttributeProto = OnnxTypes.IAttributeProto;
  type IOperatorSetIdProto = OnnxTypes.IOperatorSetIdProto;
}
type Attr = number | number[] | string | { float: number } | { floats: number[] } | { tensor: onnx.ITensorProto };
export const DT = onnx.TensorProto.DataType;

/** Weights above this size go to the external data file; small constants stay inline. */
const EXTERNAL_THRESHOLD_BYTES = 1024;
/** ORT can map external data only at page-aligned offsets; 64 KiB covers every OS's granularity. */
const EXTERNAL_ALIGN = 65536;

/**
 * A minimal ONNX graph writer: nodes, typed inputs/outputs with symbolic dims, and initializers
 * streamed to an external data file as they are added, so a model larger than memory can be built.
 */
export class GraphBuilder {
  private nodes: onnx.INodeProto[] = [];
  private inputs: onnx.IValueInfoProto[] = [];
  private outputs: onnx.IValueInfoProto[] = [];
  private initializers: onnx.ITensorProto[] = [];
  private counter = 0;
  private dataFd: number;
  private dataOffset = 0;
  private readonly dataFileName: string;
  private usesMicrosoftDomain = false;

  constructor(
    private readonly modelPath: string,
    private readonly opset = 17,
  ) {
    this.dataFileName = basename(modelPath) + '.data';
    this.dataFd = openSync(modelPath + '.data', 'w');
  }

  private fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  input(name: string, elemType: number, dims: (number | string)[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: number, dims: (number | string)[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** Adds a float32 weight; large ones are appended to the external data file right away. */
  weight(name: string, data: Float32Array, dims: number[]): string {
    this.tensor(name, DT.FLOAT, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), dims);
    return name;
  }

  /**
   * Adds a float32 weight given as pieces in order, written to the external data file one by one
   * with `between` awaited after each: a 600 MB embedding never stalls its process for seconds.
   */
  streamWeight(name: string, dims: number[], pieces: Iterable<Float32Array>, between: () => Promise<void>): Promise<string> {
    const bytes = function* () {
      for (const p of pieces) yield new Uint8Array(p.buffer, p.byteOffset, p.byteLength);
    };
    return this.streamBytes(name, DT.FLOAT, 4, dims, bytes(), between);
  }

  /** Like streamWeight, for raw bytes of any element type (`bytesPerElement` checks the total). */
  async streamBytes(name: string, dataType: number, bytesPerElement: number, dims: number[], pieces: Iterable<Uint8Array>, between: () => Promise<void>): Promise<string> {
    this.alignData();
    const offset = this.dataOffset;
    for (const p of pieces) {
      writeSync(this.dataFd, p);
      this.dataOffset += p.byteLength;
      await between();
    }
    const length = this.dataOffset - offset;
    const expected = bytesPerElement * dims.reduce((a, b) => a * b, 1);
    if (length !== expected) throw new Error(`weight "${name}": ${length} bytes written, dims ${JSON.stringify(dims)} need ${expected}`);
    this.initializers.push(this.external(name, dataType, dims, offset, length));
    return name;
  }

  /**
   * A second initializer over an existing one's bytes with other dims (same element count), so
   * two operators that want different shapes of one table need not store it twice in the file.
   */
  alias(name: string, of: string, dims: number[]): string {
    const src = this.initializers.find((t) => t.name === of);
    if (!src) throw new Error(`alias "${name}": no initializer "${of}"`);
    const count = (d: readonly unknown[]) => d.reduce<number>((a, b) => a * Number(b), 1);
    if (count(src.dims ?? []) !== count(dims)) throw new Error(`alias "${name}": dims ${JSON.stringify(dims)} do not hold the ${count(src.dims ?? [])} elements of "${of}"`);
    this.initializers.push({ ...src, name, dims });
    return name;
  }

  /** Adds raw tensor bytes of any element type (packed int4 weights, say). */
  bytes(name: string, dataType: number, data: Uint8Array, dims: number[]): string {
    this.tensor(name, dataType, data, dims);
    return name;
  }

  constInt64(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh('c');
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.tensor(name, DT.INT64, new Uint8Array(data.buffer), dims);
    return name;
  }

  constFloat(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh('c');
    const data = Float32Array.from(values);
    this.tensor(name, DT.FLOAT, new Uint8Array(data.buffer), dims);
    return name;
  }

  private tensor(name: string, dataType: number, bytes: Uint8Array, dims: number[]): void {
    if (bytes.byteLength >= EXTERNAL_THRESHOLD_BYTES) {
      this.alignData();
      writeSync(this.dataFd, bytes);
      this.initializers.push(this.external(name, dataType, dims, this.dataOffset, bytes.byteLength));
      this.dataOffset += bytes.byteLength;
    } else {
      this.initializers.push({ name, dataType, dims, rawData: Uint8Array.from(bytes) });
    }
  }

  private alignData(): void {
    const pad = (EXTERNAL_ALIGN - (this.dataOffset % EXTERNAL_ALIGN)) % EXTERNAL_ALIGN;
    if (pad) {
      writeSync(this.dataFd, new Uint8Array(pad));
      this.dataOffset += pad;
    }
  }

  private external(name: string, dataType: number, dims: number[], offset: number, length: number): onnx.ITensorProto {
    return {
      name,
      dataType,
      dims,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: this.dataFileName },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(length) },
      ],
    };
  }

  /** Adds a node; returns its output names. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, nOut = 1, domain = ''): string[] {
    if (domain === 'com.microsoft') this.usesMicrosoftDomain = true;
    const outs = Array.from({ length: nOut }, () => this.fresh(opType));
    this.nodes.push({
      opType,
      domain,
      input: inputs,
      output: outs,
      name: this.fresh(`n_${opType}`),
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** Adds a node whose optional outputs may go unused: returns the names of the used ones, in order. */
  opSparse(opType: string, inputs: string[], attrs: Record<string, Attr>, used: boolean[], domain = ''): string[] {
    const outs = this.op(opType, inputs, attrs, used.length, domain);
    const node = this.nodes[this.nodes.length - 1];
    node.output = outs.map((o, i) => (used[i] ? o : ''));
    return outs.filter((_, i) => used[i]);
  }

  /** Single-output shorthand. */
  o(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, domain = ''): string {
    return this.op(opType, inputs, attrs, 1, domain)[0];
  }

  /** Renames the value `from` to the graph output name `to` with an Identity-free rename. */
  bindOutput(from: string, to: string): void {
    for (const n of this.nodes) n.output = n.output!.map((o) => (o === from ? to : o));
    for (const n of this.nodes) n.input = n.input!.map((i) => (i === from ? to : i));
  }

  finish(graphName: string, metadata: Record<string, string>): void {
    closeSync(this.dataFd);
    const opsetImport: onnx.IOperatorSetIdProto[] = [{ domain: '', version: this.opset }];
    if (this.usesMicrosoftDomain) opsetImport.push({ domain: 'com.microsoft', version: 1 });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'asyncvoice',
      opsetImport,
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: graphName,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    });
    writeFileSync(this.modelPath, onnx.ModelProto.encode(model).finish());
  }

  abort(): void {
    try {
      closeSync(this.dataFd);
    } catch {
      /* already closed */
    }
  }
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, v: Attr): onnx.IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    return Number.isInteger(v) ? { name, type: A.INT, i: v } : { name, type: A.FLOAT, f: v };
  }
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  if ('float' in v) return { name, type: A.FLOAT, f: v.float };
  if ('floats' in v) return { name, type: A.FLOATS, floats: v.floats };
  return { name, type: A.TENSOR, t: v.tensor };
}
