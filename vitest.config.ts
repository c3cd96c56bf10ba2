import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Tests that judge live audio against the wall clock (a fake microphone in Chromium, speech streamed
 * in real time) each run alone after the rest: beside another file's model building they measure
 * that file, not the product (the browser test's first partial transcript lost its race to the
 * final in fresh-clone runs where it ran beside the exactness tests).
 */
const LIVE = ['tests/app/browser-e2e.test.ts', 'tests/app/answer-e2e.test.ts', 'tests/pipeline/realtime.test.ts'];
const timeouts = { testTimeout: 120_000, hookTimeout: 300_000 };

export default defineConfig({
  test: {
    reporters: ['default', './tests/summary-reporter.ts'],
    // Fails the run if any process a test started outlives it.
    globalSetup: ['./tests/global-setup.ts'],
    // Model-building tests use both cores already; more workers only thrash.
    maxWorkers: 2,
    projects: [
      { test: { ...timeouts, name: 'suite', include: ['tests/**/*.test.ts'], exclude: [...configDefaults.exclude, ...LIVE], sequence: { groupOrder: 0 } } },
      ...LIVE.map((file, i) => ({ test: { ...timeouts, name: `live-${i + 1}`, include: [file], sequence: { groupOrder: i + 1 } } })),
    ],
  },
});
