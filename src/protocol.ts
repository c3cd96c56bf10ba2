/**
 * The server's side of the message vocabulary. Event names and value sets come from
 * renderer/protocol.js, which the page imports as served; here they become the schemas every
 * incoming payload passes and the payload types of every outgoing event.
 */
import { z } from 'zod';
import type { EngineState, StateCause } from './async-reasoning/events.ts';
import { ClientEvent, ENGINE_STATES, INTERRUPT_CAUSES, LIMITS as CONTRACT_LIMITS, MODES, PLAYBACK_EVENTS, ServerEvent, STAMP_NAMES, STATE_CAUSES } from '../renderer/protocol.js';

export { ClientEvent as ClientEventName, ServerEvent as ServerEventName, STAMP_NAMES };
export const LIMITS = CONTRACT_LIMITS;

export const Mode = z.enum(MODES);
export type EngineStateName = (typeof ENGINE_STATES)[number];
export type InterruptCause = (typeof INTERRUPT_CAUSES)[number];
export type StateCauseName = (typeof STATE_CAUSES)[number];
export type StampName = (typeof STAMP_NAMES)[number];

const budget = z.number().int().min(1).max(LIMITS.maxBudgetTokens);

/** Client → server. */
export const ClientSchemas = {
  /** PCM16 little-endian, 16 kHz, mono. */
  [ClientEvent.audio]: z.instanceof(Uint8Array).refine((b) => b.byteLength > 0 && b.byteLength <= LIMITS.audioFrameBytes && b.byteLength % 2 === 0, {
    message: `audio frames are non-empty PCM16 (even byte count) of at most ${LIMITS.audioFrameBytes} bytes`,
  }),
  [ClientEvent.text]: z.object({ text: z.string().min(1).max(LIMITS.textChars) }).strict(),
  [ClientEvent.pttDown]: z.object({}).strict(),
  [ClientEvent.pttUp]: z.object({}).strict(),
  [ClientEvent.interrupt]: z.object({}).strict(),
  [ClientEvent.settings]: z.object({ mode: Mode.optional(), handsFree: z.boolean().optional(), maxThinkingTokens: budget.optional(), maxAnswerTokens: budget.optional() }).strict(),
  /** The renderer's playback report for one speech chunk (its own clock is converted by the server). */
  [ClientEvent.playback]: z
    .object({
      chunkId: z.number().int().min(0),
      event: z.enum(PLAYBACK_EVENTS),
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

/** Server → client. Stamps and chunk times are ms relative to the turn's reference (the end of the user's voice). */
export interface ServerEvents {
  [ServerEvent.hello]: { version: string; model: string; mode: z.infer<typeof Mode>; handsFree: boolean };
  [ServerEvent.progress]: { what: string; done: number; total: number | null };
  [ServerEvent.vad]: { speaking: boolean; atMs: number };
  /** How far behind the microphone listening ran for each audio frame since the last report (about once a second). */
  [ServerEvent.listening]: { lagMs: number[] };
  [ServerEvent.transcript]: { turnId: number; text: string; final: boolean };
  [ServerEvent.thinking]: { turnId: number; text: string };
  [ServerEvent.answer]: { turnId: number; text: string };
  [ServerEvent.state]: { turnId: number; from: EngineStateName; to: EngineStateName; cause: StateCauseName; reason: string };
  [ServerEvent.speechChunk]: { turnId: number; chunkId: number; text: string; sampleRate: number; pcm: Uint8Array; readyMs: number; durationMs: number };
  [ServerEvent.stopAudio]: { turnId: number; cause: InterruptCause };
  /** The answer was cut: the first `heardChars` characters of it were heard, the rest never will be. */
  [ServerEvent.interrupted]: { turnId: number; cause: InterruptCause; heardChars: number };
  [ServerEvent.metrics]: {
    turnId: number;
    stamps: Partial<Record<StampName, number>>;
    chunks: { chunkId: number; readyMs: number; durationMs: number; audioStartMs?: number; audioEndMs?: number }[];
    firstAnswerTokenMs: number | null;
    voiceToVoiceMs: number | null;
    totalDelayMs: number | null;
    /** How the user's turn ended: on their words (the model judged the message finished) or on silence; P(end) it read. */
    turnEnd?: { by: 'words' | 'silence'; pEnd: number | null };
    done: boolean;
  };
  [ServerEvent.error]: { event: string; message: string };
}

/** Every server event name is in the contract and every contract name has a payload type (checked by the compiler). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const SERVER_EVENTS_MATCH_CONTRACT: Same<keyof ServerEvents, (typeof ServerEvent)[keyof typeof ServerEvent]> = true;
export const ENGINE_STATES_MATCH_CONTRACT: Same<EngineState, EngineStateName> = true;
export const STATE_CAUSES_MATCH_CONTRACT: Same<StateCause, StateCauseName> = true;
export const CLIENT_EVENTS_MATCH_CONTRACT: Same<ClientEvent, (typeof ClientEvent)[keyof typeof ClientEvent]> = true;

/** Validates one incoming payload; the error text is safe to send back. */
export function validate<E extends ClientEvent>(event: E, payload: unknown): { ok: true; value: ClientPayload<E> } | { ok: false; message: string } {
  if (!isClientEvent(event)) return { ok: false, message: 'unknown event' };
  const schema = ClientSchemas[event];
  const r = schema.safeParse(payload);
  if (r.success) return { ok: true, value: r.data as ClientPayload<E> };
  return { ok: false, message: r.error.issues.map((i) => `${i.path.join('.') || event}: ${i.message}`).join('; ').slice(0, 300) };
}
