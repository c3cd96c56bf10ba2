import { spawn, type ChildProcess } from 'node:child_process';
import { BIN } from './cli.ts';

/** Starts `asyncvoice serve ARGS` as a user would, and resolves once it prints its address. */
export async function startServeProcess(args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { env });
  let out = '';
  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`serve did not start:\n${out}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = out.match(/core service: (\S+)/);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => rej(new Error(`serve exited ${code}:\n${out}`)));
  });
  return { child, url };
}
