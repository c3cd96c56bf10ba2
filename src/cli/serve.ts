import { basename, resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { PocketsphinxRecognizer } from '../asr/pocketsphinx.ts';
import { WhisperRecognizer } from '../asr/whisper.ts';
import { Tokenizer } from '../llm/model/tokenizer.ts';
import { DEFAULT_MAX_CONVERSATIONS, serve, type RunningServer } from '../server/serve.ts';
import { createTtsEngine, defaultTtsEngine, TTS_ENGINES, type TtsEngineName } from '../tts/engine.ts';
import { loadMathSpeech } from '../tts/speakable.ts';
import { addEngineOptions, engineSettings, type EngineCliOptions } from './engine-options.ts';
import { isIP } from 'node:net';
import { checkSpeechEngines } from '../doctor/checks.ts';
import { AsyncVoiceError, SpeechEngineError } from '../errors.ts';
import { intArg, portArg } from './options.ts';
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

/** A bind address: an IP literal or a plain host name (checked before anything loads). */
function hostArg(v: string): string {
  const bare = v.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare)) return bare;
  // Digits and dots that are not an IPv4 address would otherwise pass as a host name.
  if (/^[\d.]+$/.test(bare)) throw new InvalidArgumentError(`--host "${v}" is not an IPv4 address`);
  if (/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(bare)) return bare;
  throw new InvalidArgumentError(`--host "${v}" is not an IP address or host name`);
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

export function registerServe(program: Command): void {
  const cmd = program.command('serve').description('run the core service: the renderer in a browser, speech and reasoning over socket.io');
  addEngineOptions(cmd)
    .option('--host <addr>', 'bind address (anything but loopback requires the printed token)', hostArg, '127.0.0.1')
    .option('--max-clients <n>', 'conversations served at once (each holds its own cache)', intArg('--max-clients', 1, 64), DEFAULT_MAX_CONVERSATIONS)
    .option('--allow-host <name...>', "further names of this machine that pages may use to reach it (non-loopback binds)", [])
    .option('--port <n>', 'port (0 = any free one)', portArg, 8765)
    .option('--token <secret>', 'access token for non-loopback binds (default: generated)')
    .addOption(new Option('--tts <engine>', 'speech engine').choices([...TTS_ENGINES]).default(defaultTtsEngine()))
    .option('--voice <name>', 'speech voice')
    .addOption(new Option('--asr <engine>', 'recogniser').choices(['pocketsphinx', 'whisper']).default('pocketsphinx'))
    .addOption(new Option('--turn-end <how>', "how a spoken turn ends: on the words where the model can tell a finished message (auto), or always on them, or on silence alone").choices(['auto', 'words', 'silence']).default('auto'))
    .option('--asr-lm <file.arpa|default>', "pocketsphinx's language model (default: the model folder's speech.arpa if it has one, else its general English)")
    .action(runServe);
}

/** Serves the renderer and the protocol until a signal stops it; the page sees the model load. */
export async function runServe(o: ServeCliOptions): Promise<void> {
  // The service listens first; pages show the checks, the download, the graph build and the
  // prompts' encoding as they go, and talk once all are done.
  const hub: { server?: RunningServer } = {};
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
      await c?.recognizer.close().catch(() => undefined);
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
