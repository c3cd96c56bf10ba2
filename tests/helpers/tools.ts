import { INSTALL_HINTS, hasTool, runTool } from '../../src/audio/tools.ts';

/** Fails (never skips) when a program the test needs is missing, saying what to install. */
export async function needTools(...tools: string[]): Promise<void> {
  const missing: string[] = [];
  for (const t of tools) if (!(await hasTool(t))) missing.push(`${t}: ${INSTALL_HINTS[t] ?? `install ${t}`}`);
  if (missing.length) throw new Error(`this test needs programs that are not installed:\n  ${missing.join('\n  ')}`);
}

/** sox with an argument array. */
export async function sox(...args: string[]): Promise<void> {
  await runTool('sox', ['-q', '-D', ...args]);
}

/** Word error rate (Levenshtein over words) of a hypothesis against a reference. */
export function wordErrors(ref: string, hyp: string): { errors: number; words: number } {
  const r = ref.toLowerCase().split(/\s+/).filter(Boolean);
  const h = hyp.toLowerCase().split(/\s+/).filter(Boolean);
  const d = Array.from({ length: r.length + 1 }, (_, i) => [i, ...new Array(h.length).fill(0)]);
  for (let j = 0; j <= h.length; j++) d[0][j] = j;
  for (let i = 1; i <= r.length; i++) {
    for (let j = 1; j <= h.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (r[i - 1] === h[j - 1] ? 0 : 1));
  }
  return { errors: d[r.length][h.length], words: r.length };
}
