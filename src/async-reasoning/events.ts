/** The engine's typed event stream. Every event carries `tMs`, ms since the turn started, on one monotonic clock. */
export type Mode = 'async' | 'think' | 'nothink';
export type EngineState = 'listening' | 'thinker_only' | 'thinker_and_writer' | 'writer_only' | 'done';
/** Why the state changed, for programs (the reason beside it is for people). A turn's end gives its DoneReason. */
export type StateCause =
  | 'turn-started'
  | 'probe-yes'
  | 'probe-no'
  | 'writer-paragraph'
  | 'writer-sentence'
  | 'thinker-ended'
  | 'thinking-budget'
  | 'thinking-out-of-room'
  | 'user-spoke'
  | 'user-interrupted'
  | DoneReason;

export type EngineEvent =
  | { type: 'thinking'; text: string; tokenId: number; step: number; tMs: number }
  | { type: 'answer'; text: string; tokenId: number; step: number; tMs: number }
  | { type: 'state'; from: EngineState; to: EngineState; cause: StateCause; reason: string; step: number; tMs: number }
  | { type: 'control'; pYes: number; pNo: number; decision: 'yes' | 'no'; step: number; tMs: number }
  | { type: 'user-input'; text: string; tokens: number; step: number; tMs: number }
  /** After each piece of the user's words: P(their message ends here), and the words it was read after. */
  | { type: 'user-end'; pEnd: number; words: string; step: number; tMs: number }
  | { type: 'interrupted'; heardText: string; keptTokens: number; trimmedTokens: number; step: number; tMs: number }
  | { type: 'done'; reason: DoneReason; step: number; tMs: number; result: TurnResult }
  | { type: 'error'; message: string; step: number; tMs: number };

/** 'interrupted': a barge-in ended it (the baselines, or a Stop with nothing said after it); what was heard stays. */
export type DoneReason = 'end-of-answer' | 'max-answer-tokens' | 'context-limit' | 'interrupted' | 'aborted';

export interface SpeechChunk {
  text: string;
  /** When the chunk's last token was written. */
  readyMs: number;
  /** How long it takes to say. */
  durationMs: number;
}

export interface TurnMetrics {
  firstAnswerTokenMs: number | null;
  firstAnswerTokenStep: number | null;
  thinkingTokens: number;
  answerTokens: number;
  steps: number;
  controlProbes: number;
}

export interface TurnResult {
  mode: Mode;
  answer: string;
  thinking: string;
  reason: DoneReason;
  metrics: TurnMetrics;
}

/** A queue that is both pushed to and async-iterated; iteration ends when it is closed. */
export class EventQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private waiters: ((r: IteratorResult<T>) => void)[] = [];
  private closed = false;

  push(item: T): void {
    if (this.closed) return;
    const w = this.waiters.shift();
    if (w) w({ value: item, done: false });
    else this.items.push(item);
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w({ value: undefined as never, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.items.length) return Promise.resolve({ value: this.items.shift()!, done: false });
        if (this.closed) return Promise.resolve({ value: undefined as never, done: true });
        return new Promise((resolve) => this.waiters.push(resolve));
      },
    };
  }
}
