import type { EngineEvent } from '../async-reasoning/events.ts';
import { SpeechDelayObserver } from '../async-reasoning/speech-delay.ts';

/** Model text made safe for a terminal: no control characters (escape sequences could move the cursor, retitle the window…) but newlines and tabs. */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '');
}

/**
 * Text cut into lines of at most `width` characters, at spaces where there is one; `push` returns
 * the lines completed so far, `partial` is the line still being written.
 */
export class LineWrapper {
  partial = '';
  constructor(private readonly width: number) {}

  push(text: string): string[] {
    const done: string[] = [];
    for (const ch of printable(text)) {
      if (ch === '\n') {
        done.push(this.partial);
        this.partial = '';
        continue;
      }
      this.partial += ch === '\t' ? ' ' : ch;
      if (this.partial.length > this.width) {
        const cut = this.partial.lastIndexOf(' ', this.width);
        const at = cut > 0 ? cut : this.width;
        done.push(this.partial.slice(0, at));
        this.partial = this.partial.slice(cut > 0 ? at + 1 : at);
      }
    }
    return done;
  }

  /** The unfinished line, if any, as a finished one. */
  flush(): string[] {
    if (!this.partial) return [];
    const last = this.partial;
    this.partial = '';
    return [last];
  }
}

export interface LiveViewOptions {
  write: (s: string) => void;
  /** A terminal: colours, and the unfinished lines of both streams redrawn in place at the bottom. */
  tty: boolean;
  /** Terminal width in columns. */
  columns?: number;
  /** The answer alone, as it streams: no thinking, no markers (for pipes and speech programs). */
  plain?: boolean;
}

type Stream = 'thinking' | 'answer';

/**
 * The terminal view of a turn. Thinking and answer never share a line: each stream is wrapped into
 * its own lines, labelled, and a line goes out when it is complete. On a terminal, the two
 * unfinished lines stay at the bottom (thinking dim, answer bright) and are redrawn as tokens
 * arrive, so both read as they grow; in a pipe, finished lines only.
 */
export function liveView(o: LiveViewOptions): LiveView {
  const color = o.tty;
  const style = { thinking: color ? '\x1b[2m' : '', answer: color ? '\x1b[1m' : '', mark: color ? '\x1b[36m' : '', reset: color ? '\x1b[0m' : '' };
  const label: Record<Stream, string> = { thinking: 'thinking │ ', answer: '  answer │ ' };
  const width = Math.max(20, (o.columns ?? 80) - label.answer.length - 1);
  const wrap: Record<Stream, LineWrapper> = { thinking: new LineWrapper(width), answer: new LineWrapper(width) };
  let speech = new SpeechDelayObserver();
  /** Lines of the live region now on screen below the finished output (terminal only). */
  let drawn = 0;

  const line = (s: Stream, text: string) => `${style[s]}${label[s]}${text}${style.reset}`;
  const clearRegion = () => {
    if (!drawn) return;
    o.write(`\r\x1b[2K${'\x1b[1A\x1b[2K'.repeat(drawn - 1)}`);
    drawn = 0;
  };
  const drawRegion = () => {
    if (!o.tty) return;
    const live = (['thinking', 'answer'] as const).filter((s) => wrap[s].partial);
    o.write(live.map((s) => line(s, wrap[s].partial)).join('\n'));
    drawn = live.length;
  };
  /** Finished lines go above the live region, which is then drawn again. */
  const emit = (lines: string[]) => {
    if (o.tty) clearRegion();
    for (const l of lines) o.write(`${l}\n`);
    drawRegion();
  };
  const flushStreams = () => emit((['thinking', 'answer'] as const).flatMap((s) => wrap[s].flush().map((t) => line(s, t))));
  const marker = (text: string) => {
    flushStreams();
    emit([`${style.mark}[${text}]${style.reset}`]);
  };

  const observe = (e: EngineEvent) => {
    speech.observe(e);
    if (o.plain) {
      if (e.type === 'answer') o.write(printable(e.text));
      else if (e.type === 'done') o.write('\n');
      return;
    }
    if (e.type === 'thinking' || e.type === 'answer') {
      const finished = wrap[e.type].push(e.text);
      if (finished.length) emit(finished.map((t) => line(e.type, t)));
      else if (o.tty) {
        clearRegion();
        drawRegion();
      }
    } else if (e.type === 'state') marker(`state ${e.from} → ${e.to}: ${e.reason} @ ${e.tMs.toFixed(0)} ms`);
    else if (e.type === 'control') marker(`control: ${e.decision} (P(yes)=${e.pYes.toExponential(2)}, P(no)=${e.pNo.toExponential(2)})`);
    else if (e.type === 'interrupted') marker(`interrupted: kept ${e.keptTokens} tokens, trimmed ${e.trimmedTokens}`);
    else if (e.type === 'done') {
      const m = e.result.metrics;
      const first = m.firstAnswerTokenMs === null ? '—' : `${m.firstAnswerTokenMs.toFixed(0)} ms (step ${m.firstAnswerTokenStep})`;
      marker(`done: ${e.reason}; first answer token ${first}; total delay ${speech.totalDelayMs.toFixed(0)} ms`);
      speech = new SpeechDelayObserver();
    }
  };
  return { observe, settle: () => (o.plain ? undefined : flushStreams()) };
}

export interface LiveView {
  observe(e: EngineEvent): void;
  /** Writes the unfinished lines out as finished ones: the screen below is free for other text. */
  settle(): void;
}

/**
 * Output that can be held back: while the user types after /interrupt, the still-streaming
 * answer waits instead of writing over their line, and comes out when they are done.
 */
export class HeldOutput {
  private held: string[] | null = null;
  constructor(private readonly out: (s: string) => void) {}

  write = (s: string): void => {
    if (this.held) this.held.push(s);
    else this.out(s);
  };

  hold(): void {
    this.held ??= [];
  }

  release(): void {
    const h = this.held;
    this.held = null;
    if (h?.length) this.out(h.join(''));
  }
}
