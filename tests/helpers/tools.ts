import { missingTools, runTool } from '../../src/system/tools.ts';

/** Fails (never skips) when a program the test needs is missing, saying what to install. */
export async function needTools(...tools: string[]): Promise<void> {
  const missing = await missingTools(tools);
  if (missing.length) throw new Error(`this test needs programs that are not installed:\n  ${missing.join('\n  ')}`);
}

/** sox with an argument array. */
export async function sox(...args: string[]): Promise<void> {
  await runTool('sox', ['-q', '-D', ...args]);
}
