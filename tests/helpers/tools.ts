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
