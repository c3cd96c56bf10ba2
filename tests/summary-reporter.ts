import type { Reporter, TestModule } from 'vitest/node';
import { kill, leftoverProcesses } from './global-setup.ts';

/**
 * Ends the run with one plain "N passed, N failed, N skipped" line, the form CI reads whatever
 * the test runner. Failed modules (a file that could not even load) count as failures, and so
 * does any process a test started that is still running once every file has finished.
 */
export default class SummaryReporter implements Reporter {
  async onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): Promise<void> {
    let passed = 0;
    let failed = unhandledErrors.length;
    let left = leftoverProcesses();
    for (let i = 0; i < 50 && left.length; i++) {
      await new Promise((r) => setTimeout(r, 100)); // a few seconds for what is shutting down
      left = leftoverProcesses();
    }
    if (left.length) {
      failed++;
      process.exitCode = 1;
      process.stdout.write(`\nthe suite left ${left.length} process(es) running (now killed):\n${left.map((p) => `  ${p.pid} ${p.cmd.slice(0, 200)}`).join('\n')}\n`);
      left.forEach((p) => kill(p.pid));
    }
    let skipped = 0;
    for (const m of testModules) {
      if (m.state() === 'failed' && [...m.children.allTests()].length === 0) failed++;
      for (const t of m.children.allTests()) {
        const s = t.result().state;
        if (s === 'passed') passed++;
        else if (s === 'failed') failed++;
        else skipped++;
      }
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
