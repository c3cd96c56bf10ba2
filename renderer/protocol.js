// @ts-check
// The one message vocabulary between the core service and any renderer (Electron or browser):
// event names and the values payloads may take. A plain ES module, so the page imports it as
// served and the server (src/protocol.ts) builds its schemas and types from the same constants.

/** Client → server. */
export const ClientEvent = /** @type {const} */ ({
  audio: 'audio',
  text: 'text',
  pttDown: 'ptt-down',
  pttUp: 'ptt-up',
  interrupt: 'interrupt',
  settings: 'settings',
  playback: 'playback',
});

/** Server → client. */
export const ServerEvent = /** @type {const} */ ({
  hello: 'hello',
  progress: 'progress',
  vad: 'vad',
  listening: 'listening',
  transcript: 'transcript',
  thinking: 'thinking',
  answer: 'answer',
  state: 'state',
  speechChunk: 'speech-chunk',
  stopAudio: 'stop-audio',
  interrupted: 'interrupted',
  metrics: 'metrics',
  error: 'error',
});

export const MODES = /** @type {const} */ (['async', 'think', 'nothink']);

/** What the engine is doing in a turn. */
export const ENGINE_STATES = /** @type {const} */ (['listening', 'thinker_only', 'thinker_and_writer', 'writer_only', 'done']);

/** Why the engine's state changed (the readable reason beside it is for people); a turn's end gives why it ended. */
export const STATE_CAUSES = /** @type {const} */ ([
  'turn-started',
  'probe-yes',
  'probe-no',
  'writer-paragraph',
  'writer-sentence',
  'thinker-ended',
  'thinking-budget',
  'thinking-out-of-room',
  'user-spoke',
  'user-interrupted',
  'end-of-answer',
  'max-answer-tokens',
  'context-limit',
  'interrupted',
  'aborted',
]);

/** Why an answer was cut off: speech over it, the Stop button, push-to-talk pressed, or typing. */
export const INTERRUPT_CAUSES = /** @type {const} */ (['voice', 'stop', 'push-to-talk', 'typed']);

export const PLAYBACK_EVENTS = /** @type {const} */ (['start', 'end', 'stopped']);

/** Timeline stamps of one turn, in the order they normally happen. */
export const STAMP_NAMES = /** @type {const} */ ([
  'userSpeechStart',
  'firstPartial',
  'userSpeechEnd',
  'turnEnd',
  'finalTranscript',
  'firstThinkingToken',
  'firstAnswerToken',
  'firstChunkReady',
  'firstAudioStart',
  'lastAudioEnd',
]);

/** Limits: one audio frame is at most 1 s of 16 kHz PCM16; text at most 4000 characters; budgets at most 8192 tokens. */
export const LIMITS = /** @type {const} */ ({
  audioFrameBytes: 32000,
  textChars: 4000,
  maxBudgetTokens: 8192,
  /** socket.io's own cap on one message (larger ones close the connection). */
  maxHttpBufferSize: 256 * 1024,
});
