import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cliOut as cli } from '../helpers/cli.ts';
import { parseWav } from '../../src/audio/wav.ts';
import { scratchDir } from '../helpers/models.ts';
import { needTools, sox } from '../helpers/tools.ts';

const root = scratchDir('asyncvoice-cli-speech-');
beforeAll(() => needTools('espeak-ng', 'pocketsphinx_continuous', 'sox'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('speech CLI', () => {
  it('speak --out writes speech with markdown read as words; listen --file streams it back', async () => {
    const wav = join(root, 'q.wav');
    const out = await cli(['speak', '--engine', 'espeak-ng', '--voice', 'en-us+klatt', '--out', wav, 'What is the **capital** of France?']);
    expect(out).toMatch(/q.wav: [\d.]+ s, 1 chunk/);
    const audio = parseWav(readFileSync(wav));
    expect(audio.channels[0].length / audio.sampleRate).toBeGreaterThan(1);
    // Pad with silence so the utterance ends inside the stream, as a speaker pausing would.
    const padded = join(root, 'padded.wav');
    await sox(wav, padded, 'pad', '0.5', '1.5');
    const heard = await cli(['listen', '--file', padded, '--silence-ms', '500']);
    expect(heard).toMatch(/\[speech [\d.]+ s\]/);
    expect(heard).toMatch(/\[silence [\d.]+ s\]/);
    expect(heard).toMatch(/» what is the capital of france/);
  }, 60_000);
});
