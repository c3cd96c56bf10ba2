import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import madge from 'madge';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

describe('source structure', () => {
  it('no import cycle anywhere in src/ (type-only imports count: they tie modules together too)', async () => {
    const graph = await madge(join(ROOT, 'src'), { fileExtensions: ['ts', 'js'], tsConfig: join(ROOT, 'tsconfig.json') });
    // A module madge could not resolve would hide its edges: every local import must resolve.
    const skipped = graph.warnings().skipped.filter((m: string) => m.startsWith('.'));
    expect(skipped).toEqual([]);
    expect(Object.keys(graph.obj()).length).toBeGreaterThan(50);
    expect(graph.circular()).toEqual([]);
  });

  it('the live behaviour stays in small files: none in src/pipeline or src/async-reasoning is over 350 lines', () => {
    const long: string[] = [];
    for (const dir of ['src/pipeline', 'src/async-reasoning']) {
      for (const f of readdirSync(join(ROOT, dir))) {
        const path = join(ROOT, dir, f);
        const lines = readFileSync(path, 'utf8').split('\n').length;
        if (lines > 350) long.push(`${relative(ROOT, path)}: ${lines} lines`);
      }
    }
    expect(long).toEqual([]);
  });

  it('the renderer speaks the protocol through its contract, not string literals', () => {
    const app = readFileSync(join(ROOT, 'renderer/app.js'), 'utf8');
    // socket.io's own connection events are the only names it may spell out.
    const literal = [...app.matchAll(/socket\.(?:on|emit)\(\s*['"`]([^'"`]+)/g)].map((m) => m[1]).filter((n) => !['connect', 'connect_error', 'disconnect'].includes(n));
    expect(literal).toEqual([]);
    expect(app).not.toMatch(/user interrupted/);
  });
});
