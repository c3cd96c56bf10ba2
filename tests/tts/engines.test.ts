import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PocketsphinxRecognizer } from '../../src/asr/pocketsphinx.ts';
import { SileroVad } from '../../src/asr/vad.ts';
import { transcribeAudio } from '../../src/asr/transcribe.ts';
import { availableTtsEngines, createTtsEngine, type TtsEngineName } from '../../src/tts/engine.ts';
import { SpeechEngineError } from '../../src/errors.ts';
import { needTools } from '../helpers/tools.ts';

const rms = (x: Float32Array) => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / Math.max(1, x.length));
let engines: TtsEngineName[] = [];
beforeAll(async () => {
  // On Linux both engines are part of the product's setup (.ci/run installs them).
  if (process.platform === 'linux') await needTools('espeak-ng', 'text2wave', 'pocketsphinx_continuous');
  engines = await availableTtsEngines();
});

describe('TTS engines', () => {
  it('every engine present produces valid, audible PCM', async () => {
    expect(engines.length).toBeGreaterThan(0);
    for (const name of engines) {
      const out = await createTtsEngine(name).synthesize('Hello there, this is a test.');
      expect(out.sampleRate, name).toBeGreaterThanOrEqual(8000);
      expect(out.durationMs, name).toBeGreaterThan(500);
      expect(out.pcm.length, name).toBe(Math.round((out.durationMs / 1000) * out.sampleRate));
      expect(out.pcm.every((v) => Number.isFinite(v) && Math.abs(v) <= 1), name).toBe(true);
      expect(rms(out.pcm), name).toBeGreaterThan(0.01);
    }
  }, 60_000);

  it('festival without a voice is an error naming the package, not silent audio', async () => {
    // What text2wave does on a machine with festival but no voice package: exit 0, empty file.
    const bin = mkdtempSync(join(tmpdir(), 'asyncvoice-novoice-'));
    writeFileSync(join(bin, 'text2wave'), '#!/bin/sh\n# festival with no voice: complains, exits 0, writes nothing\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && : > "$2"; shift; done\necho "SIOD ERROR: unbound variable : voice_kal_diphone" >&2\nexit 0\n');
    chmodSync(join(bin, 'text2wave'), 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      await expect(createTtsEngine('festival').synthesize('Hello there.')).rejects.toThrow(/no voice.*festvox-kallpc16k/);
    } finally {
      process.env.PATH = path;
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('refuses empty text clearly', async () => {
    for (const name of engines) await expect(createTtsEngine(name).synthesize('  \n ')).rejects.toThrow(SpeechEngineError);
  });

  describe('text never runs as code', () => {
    const marker = join(tmpdir(), `asyncvoice-pwned-${process.pid}`);
    const cwdMarker = join(process.cwd(), 'pwned');
    const evil = `Say hello world. He said "quoted" ) (system "touch ${marker}") (system "touch pwned") back\\slash \\" \`touch ${marker}\` $(touch ${marker})\nnew line; echo done`;
    let vad: SileroVad;
    beforeAll(async () => {
      vad = await SileroVad.load();
      rmSync(marker, { force: true });
    });
    afterAll(async () => {
      await vad.close();
      rmSync(marker, { force: true });
    });

    it('quotes, parentheses, Scheme calls, backslashes and newlines are spoken, not executed', async () => {
      const before = new Set(readdirSync(process.cwd()));
      for (const name of engines) {
        // (espeak-ng's Klatt voice only because pocketsphinx hears it better; safety is the same.)
        const out = await createTtsEngine(name, { voice: name === 'espeak-ng' ? 'en-us+klatt' : undefined }).synthesize(evil);
        // Spoken: long enough for all those words, and the first words are recognisable.
        expect(out.durationMs, name).toBeGreaterThan(4000);
        const heard = await transcribeAudio({ sampleRate: out.sampleRate, channels: [out.pcm] }, vad, new PocketsphinxRecognizer());
        expect(heard.text, name).toMatch(/hello|world/);
      }
      expect(existsSync(marker)).toBe(false);
      expect(existsSync(cwdMarker)).toBe(false);
      expect(new Set(readdirSync(process.cwd()))).toEqual(before);
    }, 120_000);
  });
});
