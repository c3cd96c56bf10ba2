import { describe, expect, it } from 'vitest';
import { SileroVad } from '../../src/asr/vad.ts';
import { toAsrInput } from '../../src/audio/resample.ts';
import { floatToPcm16 } from '../../src/audio/wav.ts';
import type { ListenEvent } from '../../src/asr/stream.ts';
import { Conversation } from '../../src/pipeline/conversation.ts';
import type { UtteranceTracker } from '../../src/pipeline/utterances.ts';
import { EspeakNgEngine } from '../../src/tts/engine.ts';
import { fakeRecognizer, scriptedEngine } from '../helpers/fakes.ts';
import { needTools } from '../helpers/tools.ts';

const SR = 16000;
const FRAME = 1600; // 100 ms, as the renderer sends them

describe('turn stamps from live audio', () => {
  it('user speech end is when the user stopped talking, not when recognition finished', { timeout: 30_000 }, async () => {
    await needTools('espeak-ng');
    const said = await new EspeakNgEngine({ voice: 'en-us+klatt', wordsPerMinute: 150 }).synthesize('what is the capital of france');
    const speech = toAsrInput({ sampleRate: said.sampleRate, channels: [said.pcm] });
    const lead = SR / 2;
    const audio = new Float32Array(lead + speech.length + 2 * SR); // 0.5 s quiet, the question, 2 s quiet
    audio.set(speech, lead);
    const voiced = [...audio.keys()].filter((i) => Math.abs(audio[i]) > 0.02);
    const speechStartMs = (voiced[0] / SR) * 1000;
    const speechEndMs = ((voiced.at(-1)! + 1) / SR) * 1000;

    // Real time: frames arrive every 100 ms whatever the server is doing, and every recognition
    // pass takes 700 ms, as on a loaded machine.
    const RECOGNITION_MS = 700;
    const { engine, turns } = scriptedEngine();
    const reports: { stamps: Record<string, number> }[] = [];
    const conv = new Conversation({
      engine: engine as never,
      vad: await SileroVad.load(),
      recognizer: fakeRecognizer(async () => {
        await new Promise((r) => setTimeout(r, RECOGNITION_MS));
        return { text: 'what is the capital of france', segments: [] };
      }, 'slow'),
      tts: { name: 'espeak-ng', synthesize: async () => ({ pcm: new Float32Array(1), sampleRate: SR, durationMs: 0 }) },
      emit: (event, payload) => void (event === 'metrics' && reports.push(payload as never)),
    });
    const t0 = performance.now();
    let last: Promise<void> = Promise.resolve();
    for (let i = 0; i * FRAME < audio.length; i++) {
      const due = t0 + ((i + 1) * FRAME * 1000) / SR; // when this frame's last sample was captured
      await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      last = conv.pushAudio(floatToPcm16(audio.subarray(i * FRAME, (i + 1) * FRAME)));
    }
    await last;
    for (let i = 0; i < 100 && !turns[0]?.endUserInput.mock.calls.length; i++) await new Promise((r) => setTimeout(r, 50));
    expect(turns).toHaveLength(1);
    expect(turns[0].endUserInput).toHaveBeenCalled();
    const s = reports.at(-1)!.stamps;
    // Relative to the end of the user's speech: it ended at 0; it began its length before.
    expect(s.userSpeechEnd).toBe(0);
    // (VAD boundaries are within ~100 ms; the rest of the slack is timer jitter on a loaded machine.)
    expect(Math.abs(s.userSpeechStart - -(speechEndMs - speechStartMs))).toBeLessThanOrEqual(400);
    // The turn ended once the VAD had heard 600 ms of silence, however slow recognition was; the
    // final transcript came after a whole recognition pass (started early, while the voice was quiet).
    expect(s.turnEnd).toBeGreaterThanOrEqual(450);
    expect(s.turnEnd).toBeLessThanOrEqual(1600);
    expect(s.finalTranscript).toBeGreaterThanOrEqual(RECOGNITION_MS - 250);
    await conv.close();
  });
});

describe('turn stamps when recognition lags behind the user', () => {
  it("a final that arrives after the next utterance has ended still gets its own utterance's end", async () => {
    let clock = 0;
    const reports: { stamps: Record<string, number> }[] = [];
    const conv = new Conversation({
      engine: scriptedEngine().engine as never,
      vad: {} as never,
      recognizer: fakeRecognizer(),
      tts: { name: 'espeak-ng', synthesize: async () => ({ pcm: new Float32Array(1), sampleRate: SR, durationMs: 0 }) },
      emit: (event, payload) => void (event === 'metrics' && reports.push(payload as never)),
      now: () => clock,
    });
    const utterances = (conv as unknown as { utterances: UtteranceTracker }).utterances;
    // Each event as the transcriber gives it while the frame ending at `streamMs` is processed.
    const at = async (streamMs: number, e: ListenEvent) => {
      clock = streamMs;
      utterances.processing({ arrivedAt: streamMs, endMs: streamMs });
      conv.heardEvent(e);
    };
    await at(300, { type: 'speech-start', atMs: 0 });
    await at(1600, { type: 'speech-end', atMs: 1000 }); // utterance A: turn ends 600 ms after its voice
    await at(1800, { type: 'speech-start', atMs: 1500 });
    await at(3300, { type: 'speech-end', atMs: 2500 }); // utterance B: 800 ms after
    clock = 4000; // A's final only now
    conv.heardEvent({ type: 'final', text: 'what is the capital', startMs: 0, endMs: 1150, voicedEndMs: 1000, transcript: { text: '', segments: [] } });
    const s = reports.at(-1)!.stamps;
    expect(s.turnEnd).toBe(600);
    expect(s.finalTranscript).toBe(3000);
    await conv.close();
  });
});
