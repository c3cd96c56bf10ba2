import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

/** The `asyncvoice` command, as `npx asyncvoice` runs it. */
export const BIN = resolve(__dirname, '../../bin/asyncvoice.mjs');

const run = promisify(execFile);

/** Runs `asyncvoice …`; never throws: a failure comes back as its exit code and stderr. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** Runs `asyncvoice …` and returns its stdout, failing with its stderr if it fails. */
export async function cliOut(args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await runCli(args, env);
  if (r.code !== 0) throw new Error(`asyncvoice ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}
