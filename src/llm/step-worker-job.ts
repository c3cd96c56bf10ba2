import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { Session } from '../backend/onnx.ts';
import { Arena } from './arena.ts';
import { arenaFeeds, outputNames, type FromStepWorker, type RunnerSpec, type ToStepWorker } from './step-runner.ts';
import { GRAPH_IO } from './decoder-graph.ts';

const spec = workerData as RunnerSpec & { lowerPriority?: boolean };
const port = parentPort!;
const post = (m: FromStepWorker | { type: 'load-failed'; message: string }, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

// On Linux a thread's nice value is its own and threads it creates inherit it: lowered here,
// before the session makes its thread pool, every thread computing steps yields the CPU to
// listening (VAD, recognition and speech processes) whenever that has work.
// As nice as recognition's whole passes (pocketsphinx.ts): the model and the partial transcripts
// share what the VAD and the streamed final leave. At 10, nothing was thought while the user spoke.
const STEP_NICE = 5;
if (spec.lowerPriority && process.platform === 'linux') {
  try {
    setPriority(0, STEP_NICE);
  } catch {
    /* not permitted: run at normal priority */
  }
}

let session: Session;
try {
  session = await Session.load(spec.graphPath, spec.backend);
} catch (e) {
  post({ type: 'load-failed', message: (e as Error).message });
  throw e;
}
const arena = new Arena(spec.numLayers, spec.kvHeads, spec.headDim);
const outputs = outputNames(spec.numLayers);
let last: { keys: Float32Array[]; values: Float32Array[] } | null = null;

port.on('message', async (m: ToStepWorker) => {
  if (m.type === 'run') {
    try {
      arena.apply(m.ops);
      const out = await session.run(arenaFeeds(arena, m.capacity, m.feeds), outputs);
      last = {
        keys: Array.from({ length: spec.numLayers }, (_, l) => out[GRAPH_IO.newKey(l)].data),
        values: Array.from({ length: spec.numLayers }, (_, l) => out[GRAPH_IO.newValue(l)].data),
      };
      const logits = out[GRAPH_IO.logits].data;
      const whole = logits.byteOffset === 0 && logits.byteLength === logits.buffer.byteLength;
      const sent = whole ? logits : logits.slice();
      post({ type: 'ran', id: m.id, logits: sent }, [sent.buffer as ArrayBuffer]);
    } catch (e) {
      last = null;
      post({ type: 'failed', id: m.id, message: (e as Error).message });
    }
  } else if (m.type === 'commit') {
    arena.apply(m.ops);
    if (last) arena.writeTokens(last.keys, last.values, m.writes, m.S);
  } else if (m.type === 'close') {
    await session.close();
    post({ type: 'closed' });
  }
});
post({ type: 'ready' });
