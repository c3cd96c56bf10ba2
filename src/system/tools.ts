import { spawn } from 'node:child_process';
import { SpeechEngineError } from '../errors.ts';

/** How to get each external program, for error messages. */
export const INSTALL_HINTS: Record<string, string> = {
  'espeak-ng': 'install espeak-ng (Debian/Ubuntu: apt-get install espeak-ng; macOS: brew install espeak-ng)',
  text2wave: 'install festival and a voice for it (Debian/Ubuntu: apt-get install festival festvox-kallpc16k)',
  pocketsphinx_continuous: 'install pocketsphinx and its English model (Debian/Ubuntu: apt-get install pocketsphinx pocketsphinx-en-us)',
  sox: 'install sox (Debian/Ubuntu: apt-get install sox; macOS: brew install sox)',
  play: 'install sox (Debian/Ubuntu: apt-get install sox)',
  aplay: 'install alsa-utils (Debian/Ubuntu: apt-get install alsa-utils)',
  say: 'macOS ships `say`',
  afplay: 'macOS ships `afplay`',
  chromium: 'install Debian chromium (apt-get install chromium) for the browser tests',
};

/** How to get `cmd`, for messages. */
export function installHint(cmd: string): string {
  return INSTALL_HINTS[cmd] ?? `install ${cmd}`;
}

/** Of these programs, the ones that cannot be started, each as "name: how to get it". */
export async function missingTools(cmds: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const c of cmds) if (!(await hasTool(c))) missing.push(`${c}: ${installHint(c)}`);
  return missing;
}

export interface ToolResult {
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs a program with an argument array (never a shell string) and optional stdin bytes. A missing
 * program is a SpeechEngineError naming what to install; a failure carries its stderr.
 */
export function runTool(
  cmd: string,
  args: string[],
  opts: { input?: string | Uint8Array; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], signal: opts.signal });
    const out: Buffer[] = [];
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT') reject(new SpeechEngineError(`${cmd} is not installed: ${installHint(cmd)}`));
      else if (e.name === 'AbortError') reject(new SpeechEngineError(`${cmd} was cancelled`, { cause: e }));
      else reject(new SpeechEngineError(`${cmd} failed to start: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr: err });
      else reject(new SpeechEngineError(`${cmd} exited with ${code ?? sig}: ${err.trim().slice(0, 500)}`));
    });
    child.stdin.on('error', () => undefined); // a tool that exits early closes its stdin
    child.stdin.end(opts.input ?? '');
  });
}

/** True when `cmd` can be started (looked up on PATH, never through a shell). */
export async function hasTool(cmd: string): Promise<boolean> {
  const path = process.env.PATH ?? '';
  const { access, constants } = await import('node:fs/promises');
  const { join, delimiter } = await import('node:path');
  for (const dir of path.split(delimiter)) {
    try {
      await access(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}
