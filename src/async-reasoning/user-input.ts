import type { PromptSet } from './prompts.ts';

type Marker = 'none' | 'adds' | 'interrupts';

/**
 * The user's side of one turn: the words so far, whether they are still speaking, and the words
 * said since the last step, with the marker their place calls for: the rest of an utterance
 * continues it, words after it ended are "the user adds", and words after a barge-in are "the
 * user interrupts".
 */
export class UserInput {
  private queue: string[] = [];
  private marker: Marker;
  /**
   * Times the user stopped: their voice went quiet (a pause or the listener's turn end, with the
   * last words still being recognised) or their input closed. Each is a moment the listener may
   * start waiting.
   */
  stops = 0;
  /** The voice went quiet and the input has not closed since: the final words are on their way. */
  quiet = false;

  constructor(
    /** Everything the user said in this turn, for the history. */
    public text: string,
    /** The user is still speaking: the writer waits. */
    public open: boolean,
  ) {
    this.marker = open ? 'none' : 'adds';
  }

  add(text: string): boolean {
    const t = text.trim();
    if (!t) return false;
    this.queue.push(t);
    return true;
  }

  /** The user stopped speaking. Words already waiting keep their marker; later ones add to the turn. */
  end(): void {
    if (this.open) this.stops++;
    this.open = false;
    this.quiet = false;
    if (!this.queue.length) this.marker = 'adds';
  }

  /** The voice went quiet (a pause or the turn end); the input stays open for the final transcript. */
  wentQuiet(): void {
    if (!this.open || this.quiet) return;
    this.quiet = true;
    this.stops++;
  }

  /** The voice came back after going quiet: the user is talking again. */
  resumed(): void {
    if (this.open) this.quiet = false;
  }

  /** A barge-in: the user has the floor, and what they say next interrupts the answer. */
  interrupted(): void {
    this.open = true;
    this.quiet = false;
    this.marker = 'interrupts';
  }

  /** Still talking: the input is open and the voice has not gone quiet. */
  get talking(): boolean {
    return this.open && !this.quiet;
  }

  get waiting(): boolean {
    return this.queue.length > 0;
  }

  /** The words waiting since the last step, as text to encode after what the user block holds. */
  take(p: PromptSet, blockHasWords: boolean): { said: string; text: string } | null {
    if (!this.queue.length) return null;
    const said = this.queue.splice(0).join(' ');
    let text = said;
    if (this.marker === 'interrupts') text = p.userInterrupts(said);
    else if (this.marker === 'adds') text = p.userAdds(said);
    else if (blockHasWords) text = ` ${said}`;
    this.marker = this.open ? 'none' : 'adds';
    this.text += (this.text ? ' ' : '') + said;
    return { said, text };
  }
}
