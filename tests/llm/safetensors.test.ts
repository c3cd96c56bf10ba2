import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { f32ToBf16 } from '../../src/llm/model/half.ts';
import { listModelTensors, readSafetensorsHeader, readTensorF32, writeSafetensors } from '../../src/llm/model/safetensors.ts';
import { ModelSourceError } from '../../src/errors.ts';
import { scratchDir } from '../helpers/models.ts';

const root = scratchDir();
afterAll(() => rmSync(root, { recursive: true, force: true }));
const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('safetensors', () => {
  const file = join(root, 'model.safetensors');
  const a = Float32Array.from([1.5, -2, 3.25, 1e-3, 65504, -0]);
  const half = Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555]); // 1, -2, 65504, 2^-24, 0.333
  writeSafetensors(file, [
    { name: 'a', dtype: 'F32', shape: [2, 3], data: () => bytes(a) },
    { name: 'b', dtype: 'BF16', shape: [6], data: () => bytes(f32ToBf16(a)) },
    { name: 'h', dtype: 'F16', shape: [5], data: () => bytes(half) },
  ]);

  it('round-trips F32, BF16 and F16 into float32', () => {
    const t = new Map(readSafetensorsHeader(file).map((x) => [x.name, x]));
    expect(Array.from(readTensorF32(t.get('a')!))).toEqual(Array.from(a));
    expect(Array.from(readTensorF32(t.get('b')!))).toEqual([1.5, -2, 3.25, 0.00099945068359375, 65536, -0]);
    const h = readTensorF32(t.get('h')!);
    expect(Array.from(h.subarray(0, 4))).toEqual([1, -2, 65504, 2 ** -24]);
    expect(h[4]).toBeCloseTo(1 / 3, 3);
    // data starts 8-byte aligned, as other writers expect
    const headerLen = Number(readFileSync(file).readBigUInt64LE(0));
    expect((8 + headerLen) % 8).toBe(0);
  });

  it('rejects corrupt headers with a message naming the file', () => {
    const bad = join(root, 'bad.safetensors');
    const good = readFileSync(file);
    const cases: [Buffer, RegExp][] = [
      [Buffer.from([1, 2, 3]), /shorter than/],
      [Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), good.subarray(8)]), /corrupt safetensors header/],
      [Buffer.concat([good.subarray(0, 8), Buffer.from('{not json'.padEnd(Number(good.readBigUInt64LE(0)))), good.subarray(8 + Number(good.readBigUInt64LE(0)))]), /not valid JSON/],
      [good.subarray(0, good.length - 4), /declares .* bytes/],
    ];
    for (const [content, msg] of cases) {
      writeFileSync(bad, content);
      expect(() => readSafetensorsHeader(bad)).toThrow(ModelSourceError);
      expect(() => readSafetensorsHeader(bad)).toThrow(msg);
    }
  });

  it('finds shards through model.safetensors.index.json and names missing ones', () => {
    const dir = join(root, 'sharded');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), [{ name: 'x', dtype: 'F32', shape: [1], data: () => bytes(Float32Array.of(7)) }]);
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { x: 'model-00001-of-00002.safetensors', y: 'model-00002-of-00002.safetensors' } }));
    expect(() => listModelTensors(dir)).toThrow(/missing weight shards: .*00002/);
    writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [{ name: 'y', dtype: 'F32', shape: [1], data: () => bytes(Float32Array.of(9)) }]);
    const t = listModelTensors(dir);
    expect(readTensorF32(t.get('y')!)[0]).toBe(9);
    expect(() => listModelTensors(root + '/nowhere')).toThrow(/no model.safetensors/);
  });
});
