import { ProgressBar, formatBytes } from './progress.ts';
import { loadCausalLM, type LoadedModel } from '../llm/load.ts';
import { defaultHeadFormat, defaultKvFormat } from '../llm/graph/contract.ts';
import type { ModelCliOptions } from './model-options.ts';

export async function loadModelWithProgress(
  o: ModelCliOptions,
  quiet = false,
  report?: (p: { what: string; done: number; total: number | null }) => void,
  /** The process also listens (serve): steps give way to the audio front end (see docs/architecture.md). */
  listening = false,
): Promise<LoadedModel> {
  const download = new ProgressBar('download');
  const build = new ProgressBar('building graph');
  let building = false;
  let starting = false;
  const t0 = performance.now();
  // Loading takes seconds even from the cache: say what is happening from the first moment.
  if (!quiet) process.stderr.write(`loading ${o.model} (${o.weights} weights, ${o.head ?? defaultHeadFormat(o.weights)} head, ${o.kv ?? defaultKvFormat(o.weights)} kv, ${o.device})…\n`);
  const model = await loadCausalLM(o.model, {
    offline: o.offline,
    executionProvider: o.device,
    intraOpThreads: o.threads,
    maxPositions: o.maxContext,
    weights: o.weights,
    head: o.head,
    kv: o.kv,
    prefillWeights: o.prefillWeights,
    buildInWorker: true,
    // Where the steps' threads can run at a lower priority (Linux), spinning costs listening little
    // and saves ~10 % a step; elsewhere they must not spin, or they take the cores listening needs.
    ...(listening ? { lowerPriority: true, spinning: process.platform === 'linux' } : {}),
    onProgress: (p) => {
      if (p.stage === 'download') report?.({ what: `downloading ${p.file}`, done: p.loadedBytes, total: p.totalBytes });
      else if (p.stage === 'build') report?.({ what: `building the model graph (${p.what})`, done: p.done, total: p.total });
      else report?.({ what: 'starting the model', done: 0, total: null });
      if (quiet) return;
      if (p.stage === 'download') download.update(p.loadedBytes, p.totalBytes, `${p.file} ${formatBytes(p.loadedBytes)}`);
      else if (p.stage === 'build') {
        building = true;
        build.update(p.done, p.total, p.what);
      } else {
        if (building) build.done('cached for next time');
        building = false;
        if (!starting) process.stderr.write('starting the model…\n');
        starting = true;
      }
    },
  });
  if (!quiet) process.stderr.write(`model ready in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  return model;
}
