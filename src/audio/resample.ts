import { AudioError } from '../errors.ts';
import type { PcmAudio } from './wav.ts';

/** The rate every recogniser and the VAD take. */
export const ASR_SAMPLE_RATE = 16000;

/**
 * The one place audio becomes 16 kHz mono: channels are averaged, non-finite samples are refused,
 * and the rate is converted with a windowed-sinc low-pass (cut-off below the lower Nyquist), so
 * 48 kHz speech does not alias and 8 kHz speech is interpolated smoothly.
 */
export function toAsrInput(audio: PcmAudio): Float32Array {
  return resample(downmix(audio), audio.sampleRate, ASR_SAMPLE_RATE);
}

export function downmix(audio: PcmAudio): Float32Array {
  const ch = audio.channels;
  if (!ch.length) throw new AudioError('audio has no channels');
  const n = ch[0].length;
  const out = new Float32Array(n);
  for (let c = 0; c < ch.length; c++) {
    const x = ch[c];
    if (x.length !== n) throw new AudioError('channels differ in length');
    for (let i = 0; i < n; i++) out[i] += x[i];
  }
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(out[i])) throw new AudioError(`audio has a non-finite sample (NaN or ∞) at sample ${i}; refusing to guess`);
    out[i] /= ch.length;
  }
  return out;
}

/** Band-limited rate conversion (Kaiser-windowed sinc, 16 zero crossings each side). */
export function resample(x: Float32Array, from: number, to: number): Float32Array {
  if (!(from > 0 && to > 0)) throw new AudioError(`invalid sample rates ${from} → ${to}`);
  if (from === to) return x;
  const ratio = to / from;
  const n = Math.floor(x.length * ratio);
  const out = new Float32Array(n);
  const cutoff = Math.min(1, ratio) * 0.95; // of the input Nyquist
  const zeros = 16;
  const half = Math.ceil(zeros / cutoff);
  const beta = 8.6;
  const i0 = (v: number) => {
    let s = 1;
    let t = 1;
    for (let k = 1; k < 30; k++) {
      t *= (v / (2 * k)) ** 2;
      s += t;
    }
    return s;
  };
  const i0b = i0(beta);
  for (let j = 0; j < n; j++) {
    const center = j / ratio;
    const lo = Math.max(0, Math.ceil(center - half));
    const hi = Math.min(x.length - 1, Math.floor(center + half));
    let acc = 0;
    for (let i = lo; i <= hi; i++) {
      const d = i - center;
      const t = d * cutoff;
      const sinc = t === 0 ? 1 : Math.sin(Math.PI * t) / (Math.PI * t);
      const w = d / half;
      const win = Math.abs(w) >= 1 ? 0 : i0(beta * Math.sqrt(1 - w * w)) / i0b;
      acc += x[i] * sinc * win;
    }
    out[j] = acc * cutoff;
  }
  return out;
}
