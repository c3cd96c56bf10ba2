/**
 * The one message vocabulary between the core service and any renderer (Electron or browser):
 * socket.io event names, payload types, and the schemas every incoming payload is checked
 * against. Shared by server and client; the renderer mirrors the names in renderer/protocol.js.
 */
import { z } from 'zod';

/** Limits: one audio frame is at most 1 s of 16 kHz PCM16; text at most 4000 characters. */
export const LIMITS = {
  audioFrameBytes: 32000,
  textChars: 4000,
  /** socket.io's own cap on one message (larger ones close the connection). */
  maxHttpBufferSize: 256 * 1024,
} as const;

export const Mode = z.enum(['async', 'think', 'nothink']);

/** Client → server. */
export const ClientSchemas = {
  /** PCM16 little-endian, 16 kHz, mono. */
  audio: z.instanceof(Uint8Array).refine((b) => b.byteLength > 0 && b.byteLength <= LIMITS.audioFrameBytes && b.byteLength % 2 === 0, {
    message: `audio frames are non-empty PCM16 (even byte count) of at most ${LIMITS.audioFrameBytes} bytes`,
  }),
  text: z.object({ text: z.string().min(1).max(LIMITS.textChars) }).strict(),
  'ptt-down': z.object({}).strict(),
  'ptt-up': z.object({}).strict(),
  interrupt: z.object({}).strict(),
  settings: z
    .object({ mode: Mode.optional(), handsFree: z.boolean().optional(), maxThinkingTokens: z.number().int().min(1).max(8192).optional(), maxAnswerTokens: z.number().int().min(1).max(8192).optional() })
    .strict(),
  /** The renderer's playback report for one speech chunk (its own clock is converted by the server). */
  playback: z
    .object({
      chunkId: z.number().int().min(0),
      event: z.enum(['start', 'end', 'stopped']),
      /** For 'stopped': how many characters of this chunk were heard. */
      heardChars: z.number().int().min(0).optional(),
    })
    .strict(),
} as const;

export type ClientEvent = keyof typeof ClientSchemas;

/**
 * Whether a name a client sent is one of ours. Own keys only: `toString`, `constructor` or
 * `__proto__` are names a hostile client can send too, and `in` would find them on the prototype.
 */
export function isClientEvent(name: unknown): name is ClientEvent {
  return typeof name === 'string' && Object.hasOwn(ClientSchemas, name);
}
export type ClientPayload<E extends ClientEvent> = z.infer<(typeof ClientSchemas)[E]>;

/** Timeline stamps of one turn, ms on the server's monotonic clock since the turn's reference. */
export type StampName =
  | 'userSpeechStart'
  | 'firstPartial'
  | 'userSpeechEnd'
  | 'turnEnd'
  | 'finalTranscript'
  | 'firstThinkingToken'
  | 'firstAnswerToken'
  | 'firstChunkReady'
  | 'firstAudioStart'
  | 'lastAudioEnd';

/** Server → client. */
export interface ServerEvents {
  hello: { version: string; model: string; mode: z.infer<typeof Mode>; handsFree: boolean };
  vad: { speaking: boolean; atMs: number };
  transcript: { turnId: number; text: string; final: boolean };
  thinking: { turnId: number; text: string };
  answer: { turnId: number; text: string };
  state: { turnId: number; from: string; to: string; reason: string };
  'speech-chunk': { turnId: number; chunkId: number; text: string; sampleRate: number; pcm: Uint8Array; readyMs: number; durationMs: number };
  'stop-audio': { turnId: number };
  metrics: {
    turnId: number;
    stamps: Partial<Record<StampName, number>>;
    chunks: { chunkId: number; readyMs: number; durationMs: number; audioStartMs?: number; audioEndMs?: number }[];
    firstAnswerTokenMs: number | null;
    voiceToVoiceMs: number | null;
    totalDelayMs: number | null;
    done: boolean;
  };
  progress: { what: string; done: number; total: number | null };
  error: { event: string; message: string };
}

/** Validates one incoming payload; the error text is safe to send back. */
export function validate<E extends ClientEvent>(event: E, payload: unknown): { ok: true; value: ClientPayload<E> } | { ok: false; message: string } {
  if (!isClientEvent(event)) return { ok: false, message: 'unknown event' };
  const schema = ClientSchemas[event];
  const r = schema.safeParse(payload);
  if (r.success) return { ok: true, value: r.data as ClientPayload<E> };
  return { ok: false, message: r.error.issues.map((i) => `${i.path.join('.') || event}: ${i.message}`).join('; ').slice(0, 300) };
}
