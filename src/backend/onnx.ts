/**
 * The one module that touches onnxruntime-node. Everything else speaks plain typed arrays, so a
 * different runtime (or a GPU build) only changes this file.
 */
import * as ort from 'onnxruntime-node';
import { BackendError } from '../errors.ts';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from './providers.ts';

export interface BackendOptions {
  executionProvider?: ExecutionProvider;
  /** Threads inside one operator; default: onnxruntime's choice (physical cores). */
  intraOpThreads?: number;
  /**
   * Whether idle pool threads spin waiting for the next operator (onnxruntime's default) or sleep.
   * Spinning saves microseconds per operator and burns whole cores that other work needs.
   */
  spinning?: boolean;
}

export type FeedValue =
  | { type: 'int64'; data: BigInt64Array; dims: number[] }
  | { type: 'float32'; data: Float32Array; dims: number[] }
  | { type: 'int8'; data: Int8Array; dims: number[] };

export interface FetchValue {
  data: Float32Array;
  dims: number[];
}

export class Session {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly executionProvider: ExecutionProvider,
  ) {}

  static async load(modelPath: string, opts: BackendOptions = {}): Promise<Session> {
    const ep = opts.executionProvider ?? 'cpu';
    if (!EXECUTION_PROVIDERS.includes(ep)) {
      throw new BackendError(`unknown execution provider "${ep}"; choose one of ${EXECUTION_PROVIDERS.join(', ')}`);
    }
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: ep === 'cpu' ? ['cpu'] : [ep, 'cpu'],
      graphOptimizationLevel: 'all',
      // Shapes change every step (cache growth, batch of rows); arena re-planning would churn.
      enableMemPattern: false,
      logSeverityLevel: 3,
    };
    if (opts.intraOpThreads) options.intraOpNumThreads = opts.intraOpThreads;
    // Pool threads may spin between the operators of a run, never after it: a thread spinning on
    // after a step held one of this machine's two cores while the step's worker posted its logits
    // and the engine read them (the post took 0.7-0.9 ms instead of 0.08; a 64-token decode step
    // was 2-3 ms slower).
    const session: Record<string, unknown> = { force_spinning_stop: '1' };
    if (opts.spinning !== undefined) {
      const spin = opts.spinning ? '1' : '0';
      Object.assign(session, { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } });
    }
    options.extra = { session };
    try {
      return new Session(await ort.InferenceSession.create(modelPath, options), ep);
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      const hint =
        ep === 'cpu'
          ? ''
          : ` (the ${ep} provider needs a matching onnxruntime-node build and drivers; see README "GPU")`;
      throw new BackendError(`onnxruntime could not load ${modelPath}: ${msg}${hint}`, { cause: e });
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** Runs one step. Calls are serialized: one session never runs two steps at once. */
  run(feeds: Record<string, FeedValue>, outputs: string[]): Promise<Record<string, FetchValue>> {
    const next = this.queue.then(async () => {
      if (this.closed) throw new BackendError('session is closed');
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, v] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(v.type, v.data, v.dims);
      let result: ort.InferenceSession.OnnxValueMapType;
      try {
        result = await this.session.run(ortFeeds, outputs);
      } catch (e) {
        throw new BackendError(`inference step failed: ${(e as Error).message}`, { cause: e });
      }
      const out: Record<string, FetchValue> = {};
      for (const name of outputs) {
        const t = result[name] as ort.Tensor;
        out[name] = { data: t.data as Float32Array, dims: [...t.dims] };
      }
      return out;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await this.session.release();
  }
}
