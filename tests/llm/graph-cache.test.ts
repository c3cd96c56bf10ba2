import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listGraphs, pruneGraphs } from '../../src/llm/graph/graph-cache.ts';
import { GRAPH_FORMAT_VERSION } from '../../src/llm/graph/contract.ts';
import { makeAndLoad, scratchDir } from '../helpers/models.ts';

const root = scratchDir();
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('graph cache', () => {
  it('records what each graph came from, lists it, and prunes only stale ones', async () => {
    const { lm, dir } = await makeAndLoad('gqa-tied-fp32', root, 128);
    await lm.close();
    const graphs = join(root, 'cache', 'graphs');
    const fake = (key: string, meta: object | null) => {
      mkdirSync(join(graphs, key), { recursive: true });
      writeFileSync(join(graphs, key, 'model.onnx'), 'x');
      if (meta) writeFileSync(join(graphs, key, 'meta.json'), JSON.stringify(meta));
    };
    fake('old-format', { source: dir, format: GRAPH_FORMAT_VERSION - 1, ropeMode: 'rotate-query', weights: 'fp32', maxPositions: 128, builtAt: '' });
    fake('gone-source', { source: join(root, 'nowhere'), format: GRAPH_FORMAT_VERSION, ropeMode: 'rotate-query', weights: 'fp32', maxPositions: 128, builtAt: '' });
    fake('no-meta', null);
    const listed = listGraphs();
    const live = listed.filter((g) => !g.stale);
    expect(live).toHaveLength(1);
    expect(live[0].meta).toMatchObject({ source: dir, format: GRAPH_FORMAT_VERSION, weights: 'fp32', maxPositions: 128 });
    expect(live[0].bytes).toBeGreaterThan(1_000_000);
    expect(listed.find((g) => g.key === 'old-format')!.stale).toMatch(/older builder/);
    expect(listed.find((g) => g.key === 'gone-source')!.stale).toMatch(/is gone/);
    const removed = pruneGraphs();
    expect(removed.map((g) => g.key).sort()).toEqual(['gone-source', 'no-meta', 'old-format']);
    expect(existsSync(live[0].dir)).toBe(true);
    expect(pruneGraphs(true)).toHaveLength(1);
    expect(listGraphs()).toEqual([]);
  });
});
