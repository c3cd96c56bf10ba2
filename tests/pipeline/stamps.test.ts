import { describe, expect, it, vi } from 'vitest';
import { SileroVad } from '../../src/asr/vad.ts';
import { EventQueue, type EngineEvent } from '../../src/async-reasoning/events.ts';
import { toAsrInput } from '../../src/audio/resample.ts';
import { floatToPcm16 } from '../../src/audio/wav.ts';
import { Conversation } from '../../src/pipeline/conversation.ts';
import { EspeakNgEngine } from '../../src/tts/engine.ts';
import { needTools } from '../helpers/tools.ts';

const SR = 16000;
const FRAME = 1600; // 100 ms, as the renderer sends them

describe('turn stamps from live audio', () => {
  it('user speech end is when the user stopped talking, not when recognition finished', async () => {
    await needTools('espeak-ng');
    const said = await new EspeakNgEngine({ voice: 'en-us+klatt', wordsPerMinute: 150 }).synthesize('what is the capital of france');
    const speech = toAsrInput({ sampleRate: said.sampleRate, channels: [said.pcm] });
    const lead = SR / 2;
    const audio = new Float32Array(lead + speech.length + 2 * SR); // 0.5 s quiet, the question, 2 s quiet
    audio.set(speech, lead);
    const voiced = [...audio.keys()].filter((i) => Math.abs(audio[i]) > 0.02);
    const speechStartMs = (voiced[0] / SR) * 1000;
    const speechEndMs = ((voiced.at(-1)! + 1) / SR) * 1000;

    let clock = 0; // ms; a frame arrives when its last sample has been captured
    const RECOGNITION_MS = 700;
    const engineTurn = { events: new EventQueue<EngineEvent>(), finished: false, interrupt: vi.fn(), addUserInput: vi.fn(), endUserInput: vi.fn(), settled: async () => undefined, abort: () => undefined };
    let conv: Conversation;
    const listening = () => (conv as unknown as { transcriber: { speaking: boolean } }).transcriber.speaking;
    conv = new Conversation({
      engine: { startTurn: vi.fn(() => engineTurn), setBudgets: () => undefined } as never,
      vad: await SileroVad.load(),
      recognizer: {
        name: 'slow',
        // The final pass (the utterance is over) takes a while, as it does on a loaded machine.
        recognize: async () => {
          if (!listening()) clock += RECOGNITION_MS;
          return { text: 'what is the capital of france', segments: [] };
        },
        close: async () => undefined,
      },
      tts: { name: 'espeak-ng', synthesize: async () => ({ pcm: new Float32Array(1), sampleRate: SR, durationMs: 0 }) },
      emit: () => undefined,
      now: () => clock,
    });
    for (let i = 0; i * FRAME < audio.length; i++) {
      clock = Math.max(clock, ((i + 1) * FRAME * 1000) / SR);
      await conv.pushAudio(floatToPcm16(audio.subarray(i * FRAME, (i + 1) * FRAME)));
    }
    expect(engineTurn.endUserInput).toHaveBeenCalled();
    const report = (conv as unknown as { observer: { report(): { stamps: Record<string, number> } } }).observer.report();
    const s = report.stamps;
    // Relative to the end of the user's speech: it ended at 0; it began its length before.
    expect(s.userSpeechEnd).toBe(0);
    expect(Math.abs(s.userSpeechStart - -(speechEndMs - speechStartMs))).toBeLessThanOrEqual(250);
    // The turn ended once the VAD had heard 600 ms of silence; the transcript came after recognition.
    expect(s.turnEnd).toBeGreaterThanOrEqual(450);
    expect(s.turnEnd).toBeLessThanOrEqual(1000);
    expect(s.finalTranscript - s.turnEnd).toBeGreaterThanOrEqual(RECOGNITION_MS);
    await conv.close();
  });
});
