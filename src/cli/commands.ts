/**
 * Every command's flags, registered without loading what the command runs: each action imports
 * its module when that command runs, so `--help` and a bad flag answer at once and a command loads
 * only its own parts (the speech engines, the model runtime, the server are each heavy).
 */
import { Option, type Command } from 'commander';
import { DEFAULT_WHISPER_MODEL } from '../asr/whisper.ts';
import { GGUF_TYPES } from '../llm/export/ggml-quant.ts';
import { PRESETS } from '../llm/export/test-model.ts';
import { cacheRoot } from '../llm/graph/cache-root.ts';
import { DEFAULT_MAX_CONVERSATIONS } from '../server/limits.ts';
import { TTS_ENGINES, defaultTtsEngine } from '../tts/engine.ts';
import { addEngineOptions } from './engine-options.ts';
import { addModelOptions } from './model-options.ts';
import { floatArg, hostArg, intArg, portArg } from './options.ts';

/** Past the model's context, generation ends there anyway (context-limit); beyond this, a flag is a typo. */
const MAX_TOKENS = 1 << 20;

/** An action that loads its module when the command runs. */
function lazy<M>(load: () => Promise<M>, name: keyof M) {
  return async (...args: unknown[]): Promise<void> => {
    const run = (await load())[name] as (...a: unknown[]) => Promise<void> | void;
    await run(...args);
  };
}

export function registerCommands(program: Command): void {
  registerGenerate(program);
  registerModel(program);
  registerAsk(program);
  registerSpeech(program);
  registerServe(program);
  program
    .command('doctor')
    .description('check each speech engine, the browser, the model cache and the execution providers for real, and say what to install')
    .option('--json', 'print the results as JSON', false)
    .action(lazy(() => import('./doctor.ts'), 'runDoctorCommand'));
}

function registerGenerate(program: Command): void {
  const cmd = program
    .command('generate')
    .description('generate text from a prompt (greedy by default), streaming it as it is written');
  addModelOptions(cmd)
    .requiredOption('--prompt <text>', 'the prompt')
    .option('--chat', "wrap the prompt as a user turn with the model's chat template", false)
    .option('--no-think', 'with --chat on Qwen3: ask the template to skip thinking')
    .option('--max-tokens <n>', 'most tokens to generate', intArg('--max-tokens', 1, MAX_TOKENS), 64)
    .option('--json', 'print one JSON object at the end instead of streaming text', false)
    .option('--temperature <t>', '0 = greedy', floatArg('--temperature', 0, 100), 0)
    .option('--top-k <k>', 'keep the k most likely tokens (0 = all)', intArg('--top-k', 0, 1 << 20), 0)
    .option('--top-p <p>', 'nucleus sampling mass', floatArg('--top-p', 0, 1, { minExclusive: true }), 1)
    .option('--repetition-penalty <r>', 'penalise repeated tokens (1 = off)', floatArg('--repetition-penalty', 0, 100, { minExclusive: true }), 1)
    .option('--seed <n>', 'sampling seed', intArg('--seed', 0, 2 ** 32 - 1), 0)
    .action(lazy(() => import('./generate.ts'), 'runGenerate'));
}

function registerModel(program: Command): void {
  const model = program.command('model').description('model utilities');
  model
    .command('cache')
    .description(`list the built decoder graphs (${cacheRoot()}/graphs); --prune removes stale ones, --clear all`)
    .option('--prune', 'remove graphs of older builders, of vanished model folders, or half built', false)
    .option('--clear', 'remove every built graph (they are rebuilt on next use)', false)
    .action(lazy(() => import('./model.ts'), 'runCache'));
  model
    .command('make-test')
    .description('write a random-weight Qwen3-architecture model (HF layout, real Qwen3 tokenizer)')
    .requiredOption('--out <dir>', 'output folder')
    .option('--seed <n>', 'weights seed; the same seed gives the same bytes', intArg('--seed', 0, 2 ** 32 - 1), 0)
    .option('--preset <name>', `shapes preset: ${Object.keys(PRESETS).join(', ')} (default tiny)`)
    .option('--layers <n>', 'decoder layers', intArg('--layers', 1, 256))
    .option('--hidden <n>', 'hidden size', intArg('--hidden', 2, 16_384))
    .option('--heads <n>', 'attention heads', intArg('--heads', 1, 256))
    .option('--kv-heads <n>', 'key/value heads', intArg('--kv-heads', 1, 256))
    .option('--head-dim <n>', 'head dimension (even)', intArg('--head-dim', 2, 1024))
    .option('--intermediate <n>', 'MLP width', intArg('--intermediate', 1, 65_536))
    .option('--untied', 'separate lm_head instead of tied embeddings')
    .option('--dtype <t>', 'float32 or bfloat16', 'float32')
    .action(lazy(() => import('./model.ts'), 'runMakeTest'));
  model
    .command('export')
    .description('write a model folder in another runtime\'s format: --gguf (llama.cpp)')
    .requiredOption('--model <dir|hf:Org/Name>', 'a Hugging Face model folder, or a Hub id already downloaded')
    .requiredOption('--out <file>', 'file to write')
    .option('--gguf', 'GGUF, as llama.cpp (and Ollama, node-llama-cpp) load it', false)
    .addOption(new Option('--type <t>', 'weight matrices: q4_0 and q8_0 as llama.cpp quantises them, or f32').choices([...GGUF_TYPES]).default('q4_0'))
    .option('--offline', 'never use the network', false)
    .action(lazy(() => import('./model.ts'), 'runExport'));
}

function registerAsk(program: Command): void {
  const ask = program.command('ask').description('ask one question; the answer starts while the thinking goes on').argument('<question>', 'the question');
  addEngineOptions(ask)
    .option('--json', 'print one JSON object at the end', false)
    .option('--plain', 'print the answer alone as it streams (no thinking, no markers)', false)
    .option('--speak [file.wav]', 'then say the answer: into a WAV file, or aloud without one')
    .action(lazy(() => import('./ask.ts'), 'runAsk'));
  const chat = program.command('chat').description('multi-turn text chat; type /interrupt while an answer streams to cut it off, /quit to leave');
  addEngineOptions(chat).action(lazy(() => import('./ask.ts'), 'runChat'));
}

function registerSpeech(program: Command): void {
  program
    .command('speak')
    .description('say text aloud (or into a WAV file), chunked as an answer would be')
    .argument('<text>', 'the text; markdown and $LaTeX$ are read as speech')
    .addOption(new Option('--engine <name>', 'speech engine').choices([...TTS_ENGINES]).default(defaultTtsEngine()))
    .option('--voice <name>', 'engine voice (espeak-ng: en-us, en-us+klatt, …)')
    .option('--out <file.wav>', 'write a WAV file instead of playing')
    .action(lazy(() => import('./speech.ts'), 'runSpeak'));

  program
    .command('transcribe')
    .description('recognise speech in a WAV file (any rate, mono or stereo)')
    .argument('<file.wav>', 'the recording')
    .addOption(new Option('--engine <name>', 'recogniser').choices(['pocketsphinx', 'whisper']).default('pocketsphinx'))
    .option('--whisper-model <id>', 'Hub id of the Whisper model', DEFAULT_WHISPER_MODEL)
    .option('--offline', 'never download (Whisper weights must be cached)', false)
    .option('--json', 'print {"text","segments":[{"text","startMs","endMs"}]}', false)
    .option('--lm <file.arpa>', "pocketsphinx's language model (default: its general English)")
    .action(lazy(() => import('./speech.ts'), 'runTranscribe'));

  program
    .command('listen')
    .description('live microphone: VAD state and partial/final transcripts (or --file to replay a WAV as if spoken)')
    .addOption(new Option('--engine <name>', 'recogniser').choices(['pocketsphinx', 'whisper']).default('pocketsphinx'))
    .option('--file <file.wav>', 'feed this recording in real time instead of the microphone')
    .option('--offline', 'never download', false)
    .option('--silence-ms <n>', 'silence that ends an utterance', intArg('--silence-ms', 100, 10_000), 600)
    .action(lazy(() => import('./speech.ts'), 'runListen'));
}

function registerServe(program: Command): void {
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
    .action(lazy(() => import('./serve.ts'), 'runServe'));
}
