import { basename, resolve } from 'node:path';
import { PocketsphinxRecognizer } from '../asr/pocketsphinx.ts';
import { WhisperRecognizer } from '../asr/whisper.ts';
import { Tokenizer } from '../llm/model/tokenizer.ts';
import { serve, type RunningServer } from '../server/serve.ts';
import { createTtsEngine, type TtsEngineName } from '../tts/engine.ts';
import { loadMathSpeech } from '../tts/speakable.ts';
import { engineSettings, type EngineCliOptions } from './engine-options.ts';
import { checkSpeechEngines } from '../doctor/checks.ts';
import { AsyncVoiceError, SpeechEngineError } from '../errors.ts';
import { loadModelWithProgress } from './load-model.ts';
import { speechLmFor } from '../asr/speech-lm.ts';

interface ServeCliOptions extends EngineCliOptions {
  host: string;
  port: number;
  token?: string;
  tts: TtsEngineName;
  voice?: string;
  asr: 'pocketsphinx' | 'whisper';
  asrLm?: string;
  maxClients: number;
  allowHost: string[];
  turnEnd: 'auto' | 'words' | 'silence';
}

/** What a failed bind means for the person who typed the flags. */
function listenError(e: NodeJS.ErrnoException, host: string, port: number): AsyncVoiceError {
  switch (e.code) {
    case 'EADDRINUSE':
      return new AsyncVoiceError(`port ${port} on ${host} is in use (another asyncvoice serve?); stop it, or choose another with --port N (0 = any free one)`, { retryable: true });
    case 'EACCES':
      return new AsyncVoiceError(`not allowed to listen on port ${port}; ports below 1024 need privileges: choose --port 1024 or above`);
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new AsyncVoiceError(`--host ${host} is not an address of this machine`, { retryable: e.code === 'EAI_AGAIN' });
    default:
      return new AsyncVoiceError(`cannot listen on ${host}:${port}: ${e.message}`);
  }
}

/** How long a stopping service may take to close its conversations and children before it exits anyway. */
const STOP_DEADLINE_MS = 3000;

/** Serves the renderer and the protocol until a signal stops it; the page sees the model load. */
export async function runServe(o: ServeCliOptions): Promise<void> {
  // The service listens first; pages show the checks, the download, the graph build and the
  // prompts' encoding as they go, and talk once all are done.
  const hub: { server?: RunningServer; recognizer?: { close(): Promise<void> } } = {};
  const report = (p: { what: string; done: number; total: number | null }) => hub.server?.progress(p);
  let listening!: () => void;
  const listened = new Promise<void>((r) => (listening = r));
  const tts = createTtsEngine(o.tts, { voice: o.voice, offline: o.offline });
  // A local folder may advise sampling and ship a recogniser model; a Hub id is resolved later.
  const localDir = o.model.startsWith('hf:') ? undefined : o.model;
  const asrLm = speechLmFor(o.asrLm, localDir);
  const loading = (async () => {
    await listened;
    // One recogniser, loaded once, serving every conversation. A voice assistant that cannot
    // speak or hear is not worth serving: a failed check ends the service with its fix.
    report({ what: 'checking speech output and recognition', done: 0, total: null });
    const recognizer = o.asr === 'whisper' ? await WhisperRecognizer.load({ offline: o.offline }) : new PocketsphinxRecognizer({ warm: true, lm: asrLm });
    hub.recognizer = recognizer; // a stop during the rest of the loading closes it too (its decoders are child processes)
    try {
      await checkSpeechEngines(tts, recognizer);
    } catch (e) {
      throw e instanceof SpeechEngineError ? new SpeechEngineError(`not serving: ${e.message}`, { retryable: e.retryable }) : e;
    }
    const model = await loadModelWithProgress(o, false, report, true);
    const tokenizer = await Tokenizer.fromFolder(model.dir);
    await loadMathSpeech();
    return { lm: model.lm, tokenizer, recognizer, tts };
  })();
  loading.catch(() => undefined);
  const server = await serve({
    host: o.host,
    port: o.port,
    token: o.token,
    components: loading,
    // The page names the model, not the folder it sits in: a Hub id as it is, a local folder by its name.
    modelName: o.model.startsWith('hf:') ? o.model.slice(3) : basename(resolve(o.model)),
    mode: o.mode,
    engine: engineSettings(o, localDir),
    maxConversations: o.maxClients,
    allowedHosts: o.allowHost,
    turnEnd: o.turnEnd,
    onTurnEndCheck: (s) => process.stdout.write(`${s}\n`),
  }).catch((e: NodeJS.ErrnoException) => {
    throw e?.code ? listenError(e, o.host, o.port) : e;
  });
  hub.server = server;
  // A signal ends the service within STOP_DEADLINE_MS whatever its parts are doing (a second one
  // at once); whatever loaded by then is closed, so no child it started outlives it.
  let stopping = false;
  const stop = () => {
    if (stopping) process.exit(1);
    stopping = true;
    setTimeout(() => process.exit(1), STOP_DEADLINE_MS).unref();
    void (async () => {
      await server.close().catch(() => undefined);
      const c = await Promise.race([loading.catch(() => null), new Promise<null>((r) => setTimeout(() => r(null), 100))]);
      await c?.lm.close().catch(() => undefined);
      await hub.recognizer?.close().catch(() => undefined);
      process.exit(0);
    })();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.stdout.write(`asyncvoice core service: ${server.url}\n`);
  if (server.token) process.stdout.write(`access token: ${server.token}\n`);
  listening();
  // A model or a speech engine that cannot load ends the service with its error; pages were told.
  const components = await loading.catch(async (e: unknown) => {
    await new Promise((r) => setTimeout(r, 300)); // the pages' error event goes out before the socket closes
    await server.close();
    throw e;
  });
  if (!stopping && components) process.stdout.write('model ready\n');
}
