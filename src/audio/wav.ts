import { AudioError } from '../errors.ts';

/** Mono or multichannel float PCM in [-1, 1]: channels[c][i]. */
export interface PcmAudio {
  sampleRate: number;
  channels: Float32Array[];
}

/** Longest audio we accept in one piece: bounded memory, whatever the file says. */
export const MAX_AUDIO_SECONDS = 15 * 60;

/**
 * Parses a RIFF/WAVE file: PCM 8/16/24/32-bit integer or 32/64-bit float, any rate, any channel
 * count. A truncated or malformed file is an AudioError that says what is wrong, never a crash.
 */
export function parseWav(buf: Uint8Array, name = 'audio'): PcmAudio {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const tag = (o: number) => String.fromCharCode(buf[o], buf[o + 1], buf[o + 2], buf[o + 3]);
  if (buf.byteLength < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') {
    throw new AudioError(`${name} is not a WAV file (no RIFF/WAVE header)`);
  }
  let fmt: { format: number; channels: number; rate: number; bits: number } | null = null;
  let data: { offset: number; length: number; declared: number } | null = null;
  let o = 12;
  while (o + 8 <= buf.byteLength) {
    const id = tag(o);
    const size = dv.getUint32(o + 4, true);
    const body = o + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > buf.byteLength) throw new AudioError(`${name}: truncated fmt chunk`);
      let format = dv.getUint16(body, true);
      const channels = dv.getUint16(body + 2, true);
      const rate = dv.getUint32(body + 4, true);
      const bits = dv.getUint16(body + 14, true);
      if (format === 0xfffe && size >= 40 && body + 26 <= buf.byteLength) format = dv.getUint16(body + 24, true); // WAVE_FORMAT_EXTENSIBLE
      fmt = { format, channels, rate, bits };
    } else if (id === 'data') {
      // Streams written before their length was known say 0 or 0xFFFFFFFF: take what is there.
      const length = size === 0 || size === 0xffffffff || body + size > buf.byteLength ? buf.byteLength - body : size;
      data = { offset: body, length, declared: size };
      if (fmt) break;
      // Chunks may come in any order: a fmt chunk may still follow the data.
      o = body + length + (length & 1);
      continue;
    }
    o = body + size + (size & 1);
  }
  if (!fmt) throw new AudioError(`${name}: no fmt chunk anywhere in the file (truncated, or not a WAV file)`);
  if (!data) throw new AudioError(`${name}: no data chunk (truncated WAV)`);
  const { format, channels, rate, bits } = fmt;
  if (channels < 1 || channels > 32) throw new AudioError(`${name}: ${channels} channels is not plausible`);
  if (rate < 1000 || rate > 768000) throw new AudioError(`${name}: sample rate ${rate} Hz is not supported (1 kHz – 768 kHz)`);
  const isFloat = format === 3;
  if (!(format === 1 || isFloat)) throw new AudioError(`${name}: WAV format ${format} is not PCM or float (compressed WAV is not supported)`);
  if (isFloat ? bits !== 32 && bits !== 64 : ![8, 16, 24, 32].includes(bits)) throw new AudioError(`${name}: ${bits}-bit ${isFloat ? 'float' : 'PCM'} is not supported`);
  const bytes = bits / 8;
  const frames = Math.floor(data.length / (bytes * channels));
  // An empty recording is a recording; a header that promises samples and holds none is a cut-off file.
  if (frames === 0 && data.declared > 0 && data.declared !== 0xffffffff) throw new AudioError(`${name}: the WAV holds no samples (its data chunk promises ${data.declared} bytes; the file is cut off)`);
  if (frames / rate > MAX_AUDIO_SECONDS) {
    throw new AudioError(`${name} is ${(frames / rate / 60).toFixed(1)} minutes long; the limit is ${MAX_AUDIO_SECONDS / 60} minutes per file`);
  }
  const out = Array.from({ length: channels }, () => new Float32Array(frames));
  let p = data.offset;
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < channels; c++, p += bytes) {
      let v: number;
      if (isFloat) v = bits === 32 ? dv.getFloat32(p, true) : dv.getFloat64(p, true);
      else if (bits === 8) v = (buf[p] - 128) / 128;
      else if (bits === 16) v = dv.getInt16(p, true) / 32768;
      else if (bits === 24) v = ((buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16)) << 8 >> 8) / 8388608;
      else v = dv.getInt32(p, true) / 2147483648;
      if (!Number.isFinite(v)) throw new AudioError(`${name}: non-finite sample (NaN or ∞) at sample ${i} of channel ${c + 1}; refusing to guess`);
      out[c][i] = v;
    }
  }
  return { sampleRate: rate, channels: out };
}

/** 16-bit PCM WAV bytes from float samples (clipped to [-1, 1]). */
export function encodeWav(audio: PcmAudio): Uint8Array {
  const ch = audio.channels.length;
  const frames = audio.channels[0]?.length ?? 0;
  const buf = new Uint8Array(44 + frames * ch * 2);
  const dv = new DataView(buf.buffer);
  const put = (o: number, s: string) => [...s].forEach((c, i) => (buf[o + i] = c.charCodeAt(0)));
  put(0, 'RIFF');
  dv.setUint32(4, 36 + frames * ch * 2, true);
  put(8, 'WAVE');
  put(12, 'fmt ');
  dv.setUint32(16, 16, true);
  dv.setUint16(20, 1, true);
  dv.setUint16(22, ch, true);
  dv.setUint32(24, audio.sampleRate, true);
  dv.setUint32(28, audio.sampleRate * ch * 2, true);
  dv.setUint16(32, ch * 2, true);
  dv.setUint16(34, 16, true);
  put(36, 'data');
  dv.setUint32(40, frames * ch * 2, true);
  let p = 44;
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < ch; c++, p += 2) dv.setInt16(p, toInt16(audio.channels[c][i]), true);
  }
  return buf;
}

/** One float sample → 16-bit, clipped to [-1, 1]. */
function toInt16(v: number): number {
  const x = Math.max(-1, Math.min(1, v));
  return Math.round(x < 0 ? x * 32768 : x * 32767);
}

/** Float samples → raw PCM16 little-endian bytes (what the protocol and sound devices take). */
export function floatToPcm16(samples: Float32Array): Uint8Array {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = toInt16(samples[i]);
  return new Uint8Array(out.buffer);
}

/** Raw PCM16 little-endian bytes (any alignment) → float samples in [-1, 1). */
export function pcm16ToFloat(bytes: Uint8Array): Float32Array {
  const n = Math.floor(bytes.byteLength / 2);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, n * 2);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, true) / 32768;
  return out;
}

export function durationMs(audio: PcmAudio): number {
  return ((audio.channels[0]?.length ?? 0) / audio.sampleRate) * 1000;
}

/**
 * Where the voice itself starts and ends in a recording, as sample indices [start, end): the first
 * and last samples above −40 dBFS (well above a synthesiser's padding silence, below any phoneme).
 * null if nothing is that loud. espeak-ng pads its output with ≈ 0.4 s of silence at the end.
 */
export function voicedSpan(samples: Float32Array): { start: number; end: number } | null {
  const loud = (x: number) => Math.abs(x) > 0.01;
  const start = samples.findIndex(loud);
  return start < 0 ? null : { start, end: samples.findLastIndex(loud) + 1 };
}

/** Synthesised speech: mono float samples at their rate, and how long they last. */
export interface SpeechAudio {
  pcm: Float32Array;
  sampleRate: number;
  durationMs: number;
}
