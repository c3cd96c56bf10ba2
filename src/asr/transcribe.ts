import { toAsrInput, ASR_SAMPLE_RATE } from '../audio/resample.ts';
import type { PcmAudio } from '../audio/wav.ts';
import { joinSegments, type Recognizer, type Transcript } from './recognizer.ts';
import { detectSpeech, type SileroVad, type VadOptions } from './vad.ts';

/**
 * A whole recording → transcript: any rate or channel count becomes 16 kHz mono, the VAD finds the
 * speech, and each speech segment is recognised on its own (silence costs nothing, and the
 * recogniser never sees more than one utterance at a time). Times are in the recording's clock.
 */
export async function transcribeAudio(audio: PcmAudio, vad: SileroVad, recognizer: Recognizer, opts: { vad?: VadOptions; signal?: AbortSignal } = {}): Promise<Transcript> {
  const pcm = toAsrInput(audio);
  const speech = await detectSpeech(vad, pcm, { minSilenceMs: 500, speechPadMs: 150, ...opts.vad });
  const segments: Transcript['segments'] = [];
  for (const s of speech) {
    const from = Math.floor((s.startMs / 1000) * ASR_SAMPLE_RATE);
    const to = Math.min(pcm.length, Math.ceil((s.endMs / 1000) * ASR_SAMPLE_RATE));
    const t = await recognizer.recognize(pcm.subarray(from, to), { signal: opts.signal });
    for (const seg of t.segments) segments.push({ text: seg.text, startMs: s.startMs + seg.startMs, endMs: s.startMs + seg.endMs });
    if (!t.segments.length && t.text) segments.push({ text: t.text, startMs: s.startMs, endMs: s.endMs });
  }
  return { text: joinSegments(segments), segments };
}
