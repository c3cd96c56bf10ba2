import { Option, type Command } from 'commander';
import { PocketsphinxRecognizer } from '../asr/pocketsphinx.ts';
import { WhisperRecognizer } from '../asr/whisper.ts';
import { Tokenizer } from '../llm/tokenizer.ts';
import { serve, type RunningServer } from '../server/serve.ts';
import { createTtsEngine, defaultTtsEngine, TTS_ENGINES, type TtsEngineName } from '../tts/engine.ts';
import { loadMathSpeech } from '../tts/speakable.ts';
import { addEngineOptions, engineSettings, type EngineCliOptions } from './ask.ts';
import { intArg } from './main.ts';
import { loadModelWithProgress } from './load-model.ts';

interface ServeCliOptions extends EngineCliOptions {
  host: string;
  port: number;
  token?: string;
  tts: TtsEngineName;
  voice?: string;
  asr: 'pocketsphinx' | 'whisper';
}

export function registerServe(program: Command): void {
  const cmd = program.command('serve').description('run the core service: the renderer in a browser, speech and reasoning over socket.io');
  addEngineOptions(cmd)
    .option('--host <addr>', 'bind address (anything but loopback requires the printed token)', '127.0.0.1')
    .option('--port <n>', 'port (0 = any free one)', intArg('--port'), 8765)
    .option('--token <secret>', 'access token for non-loopback binds (default: generated)')
    .addOption(new Option('--tts <engine>', 'speech engine').choices([...TTS_ENGINES]).default(defaultTtsEngine()))
    .option('--voice <name>', 'speech voice')
    .addOption(new Option('--asr <engine>', 'recogniser').choices(['pocketsphinx', 'whisper']).default('pocketsphinx'))
    .action(async (o: ServeCliOptions) => {
      // The service listens at once; pages show the model loading (download, graph build) as it goes.
      const hub: { server?: RunningServer } = {};
      const loading = (async () => {
        const model = await loadModelWithProgress(o, false, (p) => hub.server?.progress(p));
        const tokenizer = await Tokenizer.fromFolder(model.dir);
        await loadMathSpeech();
        const recognizer = o.asr === 'whisper' ? await WhisperRecognizer.load({ offline: o.offline }) : new PocketsphinxRecognizer();
        hub.server?.progress({ what: 'ready', done: 1, total: 1 });
        return { lm: model.lm, tokenizer, recognizer, tts: createTtsEngine(o.tts, { voice: o.voice, offline: o.offline }) };
      })();
      const server = await serve({
        host: o.host,
        port: o.port,
        token: o.token,
        components: loading,
        modelName: o.model,
        mode: o.mode,
        engine: engineSettings(o),
      });
      hub.server = server;
      // The URL first: a page opened now shows the model loading; it talks once the model is ready.
      process.stdout.write(`asyncvoice core service: ${server.url}\n`);
      if (server.token) process.stdout.write(`access token: ${server.token}\n`);
      const components = await loading; // a model that cannot load ends the service with its error
      process.stdout.write('model ready\n');
      const stop = async () => {
        await server.close();
        await components.lm.close();
        process.exit(0);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
}
