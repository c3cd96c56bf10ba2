/**
 * Live listening latency: the spoken questions streamed in real time (100 ms frames) through the
 * VAD and pocketsphinx, as the core service receives a microphone. For each utterance: when the
 * turn ended after the voice did (the VAD's silence threshold) and when the final transcript was
 * ready after that, with the early final on and off, in this one run.
 *
 *   npm run bench:listen
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PocketsphinxRecognizer } from '../src/asr/pocketsphinx.ts';
import { StreamingTranscriber } from '../src/asr/stream.ts';
import { SileroVad } from '../src/asr/vad.ts';
import { toAsrInput } from '../src/audio/resample.ts';
import { parseWav } from '../src/audio/wav.ts';
import { fmt, median, requireTools, spokenQuestionsWav } from './shared.ts';

await requireTools('bench:listen', ['espeak-ng', 'sox', 'pocketsphinx_continuous']);
const dir = mkdtempSync(join(tmpdir(), 'asyncvoice-bench-listen-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const audio = toAsrInput(parseWav(readFileSync(await spokenQuestionsWav(dir)), 'questions.wav'));
const vad = await SileroVad.load();
const recognizer = new PocketsphinxRecognizer();
const FRAME = 1600;

/** Streams the recording in real time; per utterance, ms from turn end to final, and from voice end to turn end. */
async function listen(earlyFinal: boolean): Promise<{ finalAfterTurnEnd: number[]; turnEndAfterVoice: number[] }> {
  process.stderr.write(`streaming ${(audio.length / 16000).toFixed(0)} s in real time, early final ${earlyFinal ? 'on' : 'off'}...\n`);
  vad.reset();
  const t0 = performance.now();
  let turnEndAt = 0;
  const finalAfterTurnEnd: number[] = [];
  const turnEndAfterVoice: number[] = [];
  const t = new StreamingTranscriber(
    vad,
    recognizer,
    (e) => {
      const now = performance.now();
      if (e.type === 'speech-end') {
        turnEndAt = now;
        turnEndAfterVoice.push(now - (t0 + e.atMs));
      }
      if (e.type === 'final') finalAfterTurnEnd.push(now - turnEndAt);
    },
    { vad: { minSilenceMs: 600 }, partialEveryMs: 800, earlyFinal },
  );
  for (let i = 0; i * FRAME < audio.length; i++) {
    const due = t0 + ((i + 1) * FRAME * 1000) / 16000;
    await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
    await t.push(audio.subarray(i * FRAME, (i + 1) * FRAME));
  }
  await t.flush();
  return { finalAfterTurnEnd, turnEndAfterVoice };
}

const off = await listen(false);
const on = await listen(true);
await vad.close();
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(`\nLive listening latency — ${off.finalAfterTurnEnd.length} spoken questions streamed in real time, pocketsphinx, 600 ms turn-end silence, one run`);
console.log('                                  turn end after voice (median)   final after turn end: mean / median / max');
for (const [name, r] of [['early final off', off], ['early final on (default)', on]] as const) {
  console.log(
    `   ${name.padEnd(28)}  ${`${fmt(median(r.turnEndAfterVoice), 0)} ms`.padStart(22)}          ${fmt(mean(r.finalAfterTurnEnd), 0)} / ${fmt(median(r.finalAfterTurnEnd), 0)} / ${fmt(Math.max(...r.finalAfterTurnEnd), 0)} ms`,
  );
}
console.log(`\n   final after turn end, on / off: ${fmt(mean(on.finalAfterTurnEnd) / mean(off.finalAfterTurnEnd), 2)}× (mean)`);
