import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { VARIANTS, makeAndLoad, maxAbsDiff, scratchDir } from '../helpers/models.ts';
import { ReferenceDecoder } from './reference-forward.ts';

const root = scratchDir();
afterAll(() => rmSync(root, { recursive: true, force: true }));
const tokens = [785, 3974, 13876, 38835, 34208, 916, 279];

describe('other Llama-family variants match the reference forward', () => {
  for (const name of Object.keys(VARIANTS)) {
    it(name, async () => {
      const { lm, dir } = await makeAndLoad(name, root, 128);
      const blk = lm.cache.createBlock('s');
      const got = (await lm.forward([{ view: [blk], tokens, logits: 'all' }])).logits[0];
      const want = new ReferenceDecoder(dir).forward(tokens);
      const V = lm.vocabSize;
      for (let i = 0; i < tokens.length; i++) expect(maxAbsDiff(got.subarray(i * V, (i + 1) * V), want[i])).toBeLessThanOrEqual(1e-4);
      await lm.close();
    });
  }
});
