import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { installHint } from '../system/tools.ts';
import { PocketsphinxRecognizer } from '../asr/pocketsphinx.ts';
import { SileroVad, VAD_WINDOW } from '../asr/vad.ts';
import { WhisperRecognizer } from '../asr/whisper.ts';
import { EXECUTION_PROVIDERS } from '../backend/providers.ts';
import { checkBrowser, checkPlayer, checkRecognizer, checkTts, type CheckResult } from '../doctor/checks.ts';
import { cacheRoot } from '../llm/graph/cache-root.ts';
import { listGraphs } from '../llm/graph/graph-cache.ts';
import { listCachedModels } from '../llm/model/model-source.ts';
import { availableTtsEngines, createTtsEngine, TTS_ENGINES, type SpeechAudio } from '../tts/engine.ts';
import { formatBytes } from './progress.ts';

/** The CUDA provider is a separate download next to onnxruntime-node's own library. */
function cudaLibraryPresent(): boolean {
  const dir = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
  return existsSync(dir) && readdirSync(dir).some((f) => f.includes('providers_cuda'));
}

async function check(name: string, run: () => Promise<string>): Promise<CheckResult> {
  try {
    return { name, ok: true, detail: await run() };
  } catch (e) {
    return { name, ok: false, detail: ((e as Error)?.message ?? String(e)).split('\n')[0] };
  }
}

/** Every part the product can use on this machine, each tried for real. */
export async function runDoctor(): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const present = await availableTtsEngines();
  let speech: SpeechAudio | null = null;
  for (const name of TTS_ENGINES) {
    results.push(
      await check(`tts ${name}`, async () => {
        if (name === 'vits') {
          const t = createTtsEngine('vits', { offline: true });
          await checkTts(t);
          return 'neural voice cached and speaking';
        }
        if (!present.includes(name)) {
          throw new Error(name === 'say' ? 'only on macOS and Windows' : `not installed: ${installHint(name === 'festival' ? 'text2wave' : name)}`);
        }
        const out = await checkTts(createTtsEngine(name, { voice: name === 'espeak-ng' ? 'en-us+klatt' : undefined }));
        speech ??= out;
        return `speaks (${(out.durationMs / 1000).toFixed(1)} s of audio at ${out.sampleRate} Hz)`;
      }),
    );
  }
  results.push(
    await check('asr pocketsphinx', async () => {
      if (!speech) throw new Error('no working voice to test it with');
      return `recognises: "${await checkRecognizer(new PocketsphinxRecognizer(), speech)}"`;
    }),
  );
  results.push(
    await check('asr whisper', async () => {
      const w = await WhisperRecognizer.load({ offline: true });
      try {
        return speech ? `recognises: "${await checkRecognizer(w, speech)}"` : 'loads';
      } finally {
        await w.close();
      }
    }),
  );
  results.push(
    await check('vad silero', async () => {
      const v = await SileroVad.load();
      try {
        const p = await v.probability(new Float32Array(VAD_WINDOW));
        return `runs (P(speech) of silence ${p.toFixed(3)})`;
      } finally {
        await v.close();
      }
    }),
  );
  results.push(await check('browser', checkBrowser));
  results.push(await check('audio player', checkPlayer));
  results.push(
    await check('model cache', async () => {
      const graphs = listGraphs();
      const bytes = graphs.reduce((a, g) => a + g.bytes, 0);
      const stale = graphs.filter((g) => g.stale).length;
      const hub = listCachedModels();
      return `${graphs.length} built graph(s), ${formatBytes(bytes)} in ${cacheRoot()}${stale ? ` (${stale} stale: asyncvoice model cache --prune)` : ''}; Hub models cached: ${hub.length ? hub.join(', ') : 'none'}`;
    }),
  );
  const backends = new Map(ort.listSupportedBackends().map((b) => [b.name, b]));
  for (const ep of EXECUTION_PROVIDERS) {
    results.push(
      await check(`device ${ep}`, async () => {
        const b = backends.get(ep);
        if (!b) throw new Error(`not in this onnxruntime-node build (${process.platform}/${process.arch})`);
        if (!b.bundled && !cudaLibraryPresent()) throw new Error('its libraries are not installed: ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci (see README "GPU")');
        return ep === 'cpu' ? 'available (the default)' : 'available';
      }),
    );
  }
  return results;
}

/** `asyncvoice doctor`: every check, as a table or as JSON. */
export async function runDoctorCommand(o: { json: boolean }): Promise<void> {
  process.stderr.write('checking (each engine is run for real)…\n');
  const results = await runDoctor();
  if (o.json) {
    process.stdout.write(`${JSON.stringify(results)}\n`);
    return;
  }
  const width = Math.max(...results.map((r) => r.name.length));
  for (const r of results) process.stdout.write(`${r.ok ? 'ok  ' : 'no  '} ${r.name.padEnd(width)}  ${r.detail}\n`);
}
