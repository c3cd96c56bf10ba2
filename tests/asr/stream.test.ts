import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamingTranscriber, type ListenEvent } from '../../src/asr/stream.ts';
import { SileroVad } from '../../src/asr/vad.ts';
import { toAsrInput } from '../../src/audio/resample.ts';
import { voicedSpan } from '../../src/audio/wav.ts';
import { EspeakNgEngine } from '../../src/tts/engine.ts';
import { fakeRecognizer } from '../helpers/fakes.ts';
import { needTools } from '../helpers/tools.ts';

const SR = 16000;
let vad: SileroVad;
let audio: Float32Array;
beforeAll(async () => {
  await needTools('espeak-ng');
  vad = await SileroVad.load();
  const said = await new EspeakNgEngine({ voice: 'en-us+klatt', wordsPerMinute: 150 }).synthesize('how many days are there in a week');
  const speech = toAsrInput({ sampleRate: said.sampleRate, channels: [said.pcm] });
  audio = new Float32Array(SR / 2 + speech.length + 2 * SR);
  audio.set(speech, SR / 2);
});
afterAll(async () => vad?.close());

describe('StreamingTranscriber', () => {
  it('keeps the VAD on time while recognition is stuck, then delivers the final in order', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const passes: number[] = [];
    const events: ListenEvent[] = [];
    vad.reset();
    const t = new StreamingTranscriber(
      vad,
      fakeRecognizer(async (pcm) => {
        passes.push(pcm.length);
        await gate;
        return { text: 'how many days', segments: [] };
      }, 'stuck'),
      (e) => events.push(e),
      { partialEveryMs: 300 },
    );
    // Every push returns although no recognition pass can finish: the audio is never held up.
    for (let i = 0; i < audio.length; i += 1600) await t.push(audio.subarray(i, i + 1600));
    expect(events.map((e) => e.type)).toEqual(['speech-start', 'pause', 'speech-end']);
    // One partial running, at most one waiting behind it, and the final: never a growing backlog.
    expect(passes).toHaveLength(1);
    release();
    await t.flush();
    // The partial that was running still delivers its words; the one waiting behind it was
    // refreshed until it heard the whole utterance, so it runs as the final's pass: two passes
    // in all however many partials were due while recognition was stuck.
    expect(events.map((e) => e.type)).toEqual(['speech-start', 'pause', 'speech-end', 'partial', 'partial', 'final']);
    expect(passes).toHaveLength(2);
    const end = events[2] as Extract<ListenEvent, { type: 'speech-end' }>;
    const final = events[5] as Extract<ListenEvent, { type: 'final' }>;
    expect(final.endMs).toBeGreaterThan(end.atMs); // the final's audio is padded past the voice
    expect(passes[1]).toBeGreaterThanOrEqual(Math.round(((final.endMs - final.startMs) / 1000) * SR));
  });

  it('starts the final as soon as the voice is quiet: one pass, done before the turn ends', async () => {
    const passes: number[] = [];
    const events: ListenEvent[] = [];
    vad.reset();
    const t = new StreamingTranscriber(
      vad,
      fakeRecognizer(async (pcm) => {
        passes.push(pcm.length);
        return { text: 'how many days are there in a week', segments: [] };
      }, 'counting'),
      (e) => events.push(e),
      { partialEveryMs: 60_000 }, // no regular partials: only the early final
    );
    for (let i = 0; i < audio.length; i += 1600) await t.push(audio.subarray(i, i + 1600));
    await t.flush();
    // Its words arrive as a partial before the VAD even ends the turn, and are the final's.
    expect(events.map((e) => e.type)).toEqual(['speech-start', 'pause', 'partial', 'speech-end', 'final']);
    expect(passes).toHaveLength(1);
    const final = events[4] as Extract<ListenEvent, { type: 'final' }>;
    expect(passes[0]).toBeGreaterThanOrEqual(Math.round(((final.endMs - final.startMs) / 1000) * SR));
    expect(final.text).toBe('how many days are there in a week');
  });

  it('when the voice goes quiet, a partial still running over less of the utterance is stopped for the early final', async () => {
    const started: number[] = [];
    let aborted = 0;
    const events: ListenEvent[] = [];
    vad.reset();
    const t = new StreamingTranscriber(
      vad,
      fakeRecognizer(
        (pcm, opts) =>
          new Promise((resolve, reject) => {
            started.push(pcm.length);
            const timer = setTimeout(() => resolve({ text: 'how many days are there in a week', segments: [] }), 1000);
            opts?.signal?.addEventListener('abort', () => {
              clearTimeout(timer);
              aborted++;
              reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
            });
          }),
        'slow',
      ),
      (e) => events.push(e),
      { partialEveryMs: 300 },
    );
    for (let i = 0; i < audio.length; i += 1600) await t.push(audio.subarray(i, i + 1600));
    await t.flush();
    // The first partial was stopped, not failed; the pass that heard everything gave the final.
    expect(aborted).toBe(1);
    expect(started).toHaveLength(2);
    expect(events.map((e) => e.type)).toEqual(['speech-start', 'pause', 'speech-end', 'partial', 'final']);
    const final = events[4] as Extract<ListenEvent, { type: 'final' }>;
    expect(started[1]).toBeGreaterThanOrEqual(Math.round(((final.endMs - final.startMs) / 1000) * SR));
  });

  it('tells a pause when the voice has been quiet for half the turn-end silence, and its resumption, before the turn ends', async () => {
    const espeak = new EspeakNgEngine({ voice: 'en-us+klatt', wordsPerMinute: 150 });
    const phrase = async (text: string) => {
      const said = await espeak.synthesize(text);
      const pcm = toAsrInput({ sampleRate: said.sampleRate, channels: [said.pcm] });
      const span = voicedSpan(pcm)!; // espeak pads its output with silence
      return pcm.slice(span.start, span.end);
    };
    const [a, b] = [await phrase('how many days'), await phrase('are there in a week')];
    const GAP = 0.45 * SR; // longer than a pause (300 ms), shorter than a turn end (600 ms)
    const two = new Float32Array(SR / 2 + a.length + GAP + b.length + 2 * SR);
    two.set(a, SR / 2);
    two.set(b, SR / 2 + a.length + GAP);
    const events: ListenEvent[] = [];
    vad.reset();
    const t = new StreamingTranscriber(vad, fakeRecognizer(), (e) => events.push(e), { partialEveryMs: 60_000 });
    for (let i = 0; i < two.length; i += 320) await t.push(two.subarray(i, i + 320));
    await t.flush();
    expect(events.map((e) => e.type)).toEqual(['speech-start', 'pause', 'resume', 'pause', 'speech-end', 'final']);
    const [, p1, r1, p2, end] = events as { atMs: number }[];
    const aEndMs = ((SR / 2 + a.length) / SR) * 1000;
    const bStartMs = aEndMs + (GAP / SR) * 1000;
    expect(Math.abs(p1.atMs - aEndMs)).toBeLessThan(150); // where the quiet began
    expect(r1.atMs).toBeGreaterThan(bStartMs);
    expect(r1.atMs).toBeLessThan(bStartMs + 300);
    expect(p2.atMs).toBe(end.atMs); // the last pause is where the utterance's voice ended
  });

  it('a recognition failure surfaces at the next push, not only at the end', async () => {
    vad.reset();
    const t = new StreamingTranscriber(
      vad,
      fakeRecognizer(async () => {
        throw new Error('recogniser crashed');
      }, 'broken'),
      () => undefined,
      { partialEveryMs: 300 },
    );
    let failed: Error | null = null;
    for (let i = 0; i < audio.length && !failed; i += 1600) await t.push(audio.subarray(i, i + 1600)).catch((e) => (failed = e));
    expect(failed).toBeInstanceOf(Error);
    expect(String(failed)).toContain('recogniser crashed');
  });
});

describe('StreamingTranscriber with a recogniser that streams', () => {
  it('feeds the whole utterance to the stream as it comes; the final is the stream’s, not held behind a slow partial', async () => {
    const events: ListenEvent[] = [];
    let streamed = 0;
    let ended = 0;
    let partialAborted = false;
    const rec = {
      ...fakeRecognizer(async (_pcm, o) => {
        // A partial that would take 10 s: only an abort ends it early.
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, 10_000);
          o?.signal?.addEventListener('abort', () => {
            partialAborted = true;
            clearTimeout(t);
            reject(new Error('aborted'));
          });
        });
        return { text: 'too late', segments: [] };
      }, 'streaming'),
      openStream: () => ({
        write: (a: Float32Array) => void (streamed += a.length),
        end: async () => {
          ended++;
          return { text: 'how many days are there in a week', segments: [{ text: 'how many days are there in a week', startMs: 100, endMs: 1900 }] };
        },
        abort: () => undefined,
      }),
    };
    vad.reset();
    const t = new StreamingTranscriber(vad, rec, (e) => events.push(e), { partialEveryMs: 300 });
    const t0 = performance.now();
    for (let i = 0; i < audio.length; i += 1600) await t.push(audio.subarray(i, i + 1600));
    await t.flush();
    expect(performance.now() - t0).toBeLessThan(5000); // not the 10 s partial
    expect(partialAborted).toBe(true);
    expect(ended).toBe(1);
    const final = events.find((e) => e.type === 'final') as Extract<ListenEvent, { type: 'final' }>;
    expect(final.text).toBe('how many days are there in a week');
    expect(events.some((e) => e.type === 'partial' && e.text === 'too late')).toBe(false);
    // Everything from the (padded) start of speech to the turn end went to the stream, once.
    expect(streamed).toBeGreaterThanOrEqual(Math.round(((final.endMs - final.startMs) / 1000) * SR));
    expect(streamed).toBeLessThanOrEqual(audio.length);
    // Segment times are placed on the stream's own clock.
    expect(final.transcript.segments[0].startMs).toBeCloseTo(final.startMs + 100, 0);
  });
});
