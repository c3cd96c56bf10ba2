import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { LocalStepRunner, type FromStepWorker, type RunnerSpec, type ToStepWorker } from './step-runner.ts';

const spec = workerData as RunnerSpec;
const port = parentPort!;
const post = (m: FromStepWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

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

// The same runner the engine's thread would use, here with its arena: the worker only relays.
let runner: LocalStepRunner;
try {
  runner = await LocalStepRunner.create(spec);
} catch (e) {
  post({ type: 'load-failed', message: (e as Error).message });
  throw e;
}

port.on('message', async (m: ToStepWorker) => {
  if (m.type === 'run') {
    let storeKv: (() => void) | null = null;
    try {
      runner.arena.apply(m.ops);
      const ran = await runner.runOnly(m.feeds, m.capacity, m.store);
      const whole = ran.logits.byteOffset === 0 && ran.logits.byteLength === ran.logits.buffer.byteLength;
      const sent = whole ? ran.logits : ran.logits.slice();
      post({ type: 'ran', id: m.id, logits: sent }, [sent.buffer as ArrayBuffer]);
      storeKv = ran.storeKv;
    } catch (e) {
      post({ type: 'failed', id: m.id, message: (e as Error).message });
    }
    // Stored after answering: the parent reads the logits meanwhile, and its next run waits in this
    // thread's queue until the store is done. A store that throws leaves the arena unknown after a
    // run the parent counts as done: it is not caught, so the worker stops and every later run fails.
    storeKv?.();
  } else if (m.type === 'close') {
    await runner.close();
    post({ type: 'closed' });
  }
});
post({ type: 'ready' });
