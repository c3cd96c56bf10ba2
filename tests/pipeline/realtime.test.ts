import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { PocketsphinxRecognizer } from '../../src/asr/pocketsphinx.ts';
import { SileroVad } from '../../src/asr/vad.ts';
import { toAsrInput } from '../../src/audio/resample.ts';
import { floatToPcm16 } from '../../src/audio/wav.ts';
import { loadCausalLM, type LoadedModel } from '../../src/llm/load.ts';
import { makeTestModel } from '../../src/llm/export/test-model.ts';
import { Conversation } from '../../src/pipeline/conversation.ts';
import { EspeakNgEngine } from '../../src/tts/engine.ts';
import { scriptedEngine } from '../helpers/fakes.ts';
import { scratchDir } from '../helpers/models.ts';
import { needTools } from '../helpers/tools.ts';

const SR = 16000;
const FRAME = 320; // 20 ms, as a microphone delivers them
const root = scratchDir('asyncvoice-realtime-');
let model: LoadedModel;

beforeAll(async () => {
  await needTools('espeak-ng', 'pocketsphinx_continuous');
  // Real vocabulary and a few wide layers: each step reads a few hundred MB, tens of ms of both cores.
  const dir = makeTestModel({ out: join(root, 'model'), layers: 4, hidden: 512, heads: 8, kvHeads: 4, headDim: 64, intermediate: 2048, seed: 4 }).dir;
  process.env.ASYNCVOICE_CACHE_DIR = join(root, 'cache');
  // As serve loads it: steps in their worker thread, not spinning, at a lower priority than listening.
  model = await loadCausalLM(dir, { maxPositions: 512, lowerPriority: true, spinning: false });
}, 180_000);

afterAll(async () => {
  await model?.lm.close();
  rmSync(root, { recursive: true, force: true });
});

describe('listening keeps up with the microphone while the model saturates the CPU', () => {
  it('speech start and end and the turn end arrive within a bounded lag of the voice', { timeout: 90_000 }, async () => {
    const said = await new EspeakNgEngine({ voice: 'en-us+klatt', wordsPerMinute: 150 }).synthesize('how many legs does a spider have');
    const speech = toAsrInput({ sampleRate: said.sampleRate, channels: [said.pcm] });
    const lead = SR; // 1 s of quiet, the question, 3 s of quiet
    const audio = new Float32Array(lead + speech.length + 3 * SR);
    audio.set(speech, lead);
    const voiced = [...audio.keys()].filter((i) => Math.abs(audio[i]) > 0.02);
    const voiceStartMs = (voiced[0] / SR) * 1000;
    const voiceEndMs = ((voiced.at(-1)! + 1) / SR) * 1000;

    // The load: batched two-row steps back to back, as a thinker and a writer make them, all along.
    const lm = model.lm;
    const block = lm.cache.createBlock('load');
    await lm.forward([{ view: [block], tokens: Array.from({ length: 200 }, (_, i) => 1000 + i) }]);
    let loading = true;
    let steps = 0;
    const load = (async () => {
      while (loading) {
        await lm.forward([
          { view: [block], tokens: [7], persist: false },
          { view: [block], tokens: [8], persist: false },
        ]);
        steps++;
      }
    })();

    const { engine, turns } = scriptedEngine();
    const vadAt: { speaking: boolean; at: number }[] = [];
    const lags: number[] = [];
    const reports: { stamps: Record<string, number> }[] = [];
    const recognizer = new PocketsphinxRecognizer({ warm: true });
    const vad = await SileroVad.load();
    const conv = new Conversation({
      engine: engine as never,
      vad,
      recognizer,
      tts: { name: 'espeak-ng', synthesize: async () => ({ pcm: new Float32Array(1), sampleRate: SR, durationMs: 0 }) },
      emit: (event, payload) => {
        const p = payload as never as { speaking: boolean; lagMs: number[]; stamps: Record<string, number> };
        if (event === 'vad') vadAt.push({ speaking: p.speaking, at: performance.now() });
        if (event === 'listening') lags.push(...p.lagMs);
        if (event === 'metrics') reports.push(p);
      },
    });
    const t0 = performance.now();
    try {
      for (let i = 0; i * FRAME < audio.length; i++) {
        const due = t0 + ((i + 1) * FRAME * 1000) / SR;
        await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
        void conv.pushAudio(floatToPcm16(audio.subarray(i * FRAME, (i + 1) * FRAME)));
      }
      for (let i = 0; i < 100 && !turns[0]?.endUserInput.mock.calls.length; i++) await new Promise((r) => setTimeout(r, 50));
    } finally {
      loading = false;
      await load;
      block.drop();
      await conv.close();
      await recognizer.close();
      await vad.close();
    }
    const streamSeconds = audio.length / SR;
    console.log(`${steps} two-row steps in ${streamSeconds.toFixed(1)} s of audio; listening lag p50 ${pct(lags, 50)} ms, p95 ${pct(lags, 95)} ms, max ${Math.max(...lags)} ms`);
    // The model really was busy the whole time.
    expect(steps).toBeGreaterThan(streamSeconds * 5);

    // Bounds: the VAD's own decision times (a 250 ms burst starts speech, 600 ms of quiet ends it)
    // plus a lag allowance far above what this machine shows (single-digit ms at p95) and far below
    // the seconds it fell behind when steps ran on the listening thread.
    const ALLOWANCE_MS = 500;
    expect(pct(lags, 95)).toBeLessThanOrEqual(ALLOWANCE_MS);
    const start = vadAt.find((v) => v.speaking);
    const end = vadAt.find((v) => !v.speaking);
    expect(start && end, JSON.stringify(vadAt)).toBeTruthy();
    expect(start!.at - (t0 + voiceStartMs)).toBeLessThanOrEqual(250 + 32 + ALLOWANCE_MS);
    expect(end!.at - (t0 + voiceEndMs)).toBeLessThanOrEqual(600 + 32 + ALLOWANCE_MS);
    expect(turns).toHaveLength(1);
    const s = reports.at(-1)!.stamps;
    expect(s.turnEnd).toBeLessThanOrEqual(600 + 32 + ALLOWANCE_MS);
  });
});

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
