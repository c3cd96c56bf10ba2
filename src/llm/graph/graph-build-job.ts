import { parentPort, workerData } from 'node:worker_threads';
import { buildDecoderGraph, type BuildOptions } from './decoder-graph.ts';
import type { DecoderConfig } from '../model/config.ts';
import type { TensorInfo } from '../model/safetensors.ts';

/** What the parent sends (all structured-clonable) and what comes back. */
export interface BuildJob {
  cfg: DecoderConfig;
  tensors: Map<string, TensorInfo>;
  outDir: string;
  opts: Omit<BuildOptions, 'onProgress'>;
}
export type BuildMessage =
  | { type: 'progress'; done: number; total: number; what: string }
  | { type: 'done' }
  | { type: 'error'; name: string; message: string; retryable: boolean };

const job = workerData as BuildJob;
const post = (m: BuildMessage) => parentPort!.postMessage(m);
try {
  await buildDecoderGraph(job.cfg, job.tensors, job.outDir, { ...job.opts, onProgress: (done, total, what) => post({ type: 'progress', done, total, what }) });
  post({ type: 'done' });
} catch (e) {
  const err = e as Error & { retryable?: boolean };
  post({ type: 'error', name: err?.name ?? 'Error', message: err?.message ?? String(e), retryable: err?.retryable === true });
}
