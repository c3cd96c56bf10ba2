/**
 * One small error hierarchy for the whole product. `retryable` says whether the same call may
 * succeed later without the user changing anything (a network hiccup), as opposed to bad input.
 */
export class AsyncVoiceError extends Error {
  readonly retryable: boolean;
  constructor(message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.retryable = options.retryable ?? false;
  }
}

/** A model folder or Hub id that cannot be used: missing files, offline, corrupt data. */
export class ModelSourceError extends AsyncVoiceError {}

/** A checkpoint whose architecture or config asks for something we do not implement. */
export class UnsupportedModelError extends AsyncVoiceError {}

/** Misuse of the runtime API (bad shapes, unknown blocks, a view that cannot be built). */
export class RuntimeUsageError extends AsyncVoiceError {}

/** The inference backend itself failed. */
export class BackendError extends AsyncVoiceError {}

/** Audio that cannot be used: not a WAV, truncated, non-finite samples, too long, wrong shape. */
export class AudioError extends AsyncVoiceError {}

/** A speech engine (TTS/ASR program or model) is missing or failed. */
export class SpeechEngineError extends AsyncVoiceError {}
