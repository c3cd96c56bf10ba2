import { readdirSync, readFileSync } from 'node:fs';

/**
 * Marks every process the suite starts (the variable is inherited): the summary reporter fails the
 * run if any is still running once every test file has finished (a test that starts `serve`, a
 * recogniser or a browser must stop it, even when it fails). Linux (/proc); elsewhere none are found.
 */
export default function setup(): () => void {
  process.env.ASYNCVOICE_TEST_RUN = `${process.pid}-${Date.now()}`;
  // Last resort: whatever is still running when the runner closes is killed.
  return () => leftoverProcesses().forEach((p) => kill(p.pid));
}

export function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/** Processes of this run (marked by setup) other than the runner and its workers. */
export function leftoverProcesses(): { pid: number; cmd: string }[] {
  const mark = process.env.ASYNCVOICE_TEST_RUN;
  if (!mark || process.platform !== 'linux') return [];
  const out: { pid: number; cmd: string }[] = [];
  for (const d of readdirSync('/proc')) {
    const pid = Number(d);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${d}/environ`, 'latin1').split('\0').includes(`ASYNCVOICE_TEST_RUN=${mark}`)) continue;
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'latin1').split('\0').join(' ').trim();
      if (cmd && !/vitest|tinypool/.test(cmd)) out.push({ pid, cmd });
    } catch {
      /* gone meanwhile, or not ours to read */
    }
  }
  return out;
}
