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

  it('no file in src/ is over 400 lines', () => {
    const long: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, e.name);
        if (e.isDirectory()) walk(path);
        else if (/\.(ts|mjs)$/.test(e.name)) {
          const lines = readFileSync(path, 'utf8').split('\n').length;
          if (lines > 400) long.push(`${relative(ROOT, path)}: ${lines} lines`);
        }
      }
    };
    walk(join(ROOT, 'src'));
    expect(long).toEqual([]);
  });

  it('the renderer speaks the protocol through its contract, not string literals', () => {
    const app = readFileSync(join(ROOT, 'renderer/app.js'), 'utf8');
    // socket.io's own connection events are the only names it may spell out.
    const literal = [...app.matchAll(/socket\.(?:on|emit)\(\s*['"`]([^'"`]+)/g)].map((m) => m[1]).filter((n) => !['connect', 'connect_error', 'disconnect'].includes(n));
    expect(literal).toEqual([]);
    expect(app).not.toMatch(/user interrupted/);
  });

  /**
   * The layers of src/, lowest first (docs/architecture.md, "Layout"): a module may import its own
   * folder or a lower layer, never a higher one. src/llm is four layers of its own: model files,
   * the graph builder, the runtime, and what writes models (exports, made test models).
   */
  const LAYERS: string[][] = [
    ['errors', 'types'],
    ['system', 'backend'],
    ['audio'],
    ['tts', 'asr'],
    ['llm/model'],
    ['llm/graph'],
    ['llm/runtime'],
    ['llm/export', 'llm'],
    ['async-reasoning'],
    ['protocol'],
    ['pipeline'],
    ['server', 'doctor'],
    ['cli'],
  ];
  const layerOf = (file: string): string => {
    const parts = relative(join(ROOT, 'src'), file).split('/');
    if (parts[0] === 'llm') return parts.length > 2 ? `llm/${parts[1]}` : 'llm';
    return parts.length > 1 ? parts[0] : parts[0].replace(/\.ts$/, '');
  };
  const rank = (layer: string): number => LAYERS.findIndex((l) => l.includes(layer));
  const sources = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : /\.(ts|mjs)$/.test(e.name) ? [join(dir, e.name)] : []));
  const relativeImports = (file: string): string[] =>
    [...readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)].map((m) => join(file, '..', m[1]));

  it('no upward imports: every module imports only its own folder or the layers below it', () => {
    const bad: string[] = [];
    for (const f of sources(join(ROOT, 'src'))) {
      const from = layerOf(f);
      expect(rank(from), `${relative(ROOT, f)}: its folder is in no layer`).toBeGreaterThanOrEqual(0);
      for (const t of relativeImports(f)) {
        if (!t.startsWith(join(ROOT, 'src'))) continue;
        const to = layerOf(t);
        if (to !== from && rank(to) >= rank(from)) bad.push(`${relative(ROOT, f)} → ${relative(ROOT, t)}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('the runtime reads the graph contract, not the graph builder', () => {
    const bad = sources(join(ROOT, 'src/llm/runtime')).flatMap((f) => relativeImports(f).filter((t) => /graph\/(decoder-graph|onnx-builder|graph-build)/.test(t)).map((t) => `${relative(ROOT, f)} → ${relative(ROOT, t)}`));
    expect(bad).toEqual([]);
  });

  it("the CLI starts without its heavy packages: what main.ts imports statically reaches no model runtime, server, Hub client or schema library (each command loads its own when it runs)", () => {
    const HEAVY = ['onnxruntime-node', 'socket.io', '@huggingface/transformers', '@huggingface/hub', 'zod', 'speech-rule-engine', 'temml'];
    // Value imports and re-exports evaluated at load: not `import type`, not import().
    const staticImports = (file: string): string[] =>
      [...readFileSync(file, 'utf8').matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?\bfrom\s+'([^']+)'|^import\s+'([^']+)'/gms)].map((m) => m[1] ?? m[2]);
    const seen = new Set<string>();
    const reached: string[] = [];
    const walk = (file: string, path: string[]): void => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const spec of staticImports(file)) {
        if (spec.startsWith('.')) walk(join(file, '..', spec), [...path, relative(ROOT, file)]);
        else if (HEAVY.some((h) => spec === h || spec.startsWith(`${h}/`))) reached.push(`${[...path, relative(ROOT, file)].join(' → ')} → ${spec}`);
      }
    };
    walk(join(ROOT, 'src/cli/main.ts'), []);
    expect(seen.size).toBeGreaterThan(10);
    expect(reached).toEqual([]);
  });

  it('benches do not import the tests', () => {
    const bad = sources(join(ROOT, 'bench')).flatMap((f) => relativeImports(f).filter((t) => t.startsWith(join(ROOT, 'tests'))).map((t) => `${relative(ROOT, f)} → ${relative(ROOT, t)}`));
    expect(bad).toEqual([]);
  });
});
