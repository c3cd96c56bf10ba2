// The microphone and push-to-talk: opening and closing capture (once at a time), the click a
// browser wants before it records, and the talk key or button held.
import { startCapture } from '/audio.js';

export class Microphone {
  /**
   * `onFrame(pcm16 ArrayBuffer)` for every captured frame; `onChange()` when it opens, closes or
   * starts/stops waiting for a click; `onError(message)`; `note(what, detail)` for the page's log.
   */
  constructor({ onFrame, onChange, onError, note }) {
    Object.assign(this, { onFrame, onChange, onError, note });
    this.capture = null;
    this.opening = null;
    this.clickWait = null;
    this.needsClick = false;
    /** Times it opened. */
    this.opens = 0;
  }

  get open() {
    return this.capture !== null;
  }

  /** Opens it (a second call while opening waits for the first); `headphones` turns echo cancellation and noise suppression off. */
  start(headphones) {
    this.opening ??= this.openNow(headphones).finally(() => (this.opening = null));
    return this.opening;
  }

  async openNow(headphones) {
    if (this.capture) return;
    try {
      this.capture = await startCapture((frame) => this.onFrame(frame), headphones ? { echoCancellation: false, noiseSuppression: false } : {});
      this.opens++;
      const onOff = (v) => (v ? 'on' : 'off');
      this.note('microphone on', `(echo cancellation ${onOff(this.capture.echoCancellation)}, noise suppression ${onOff(this.capture.noiseSuppression)})`);
      if (this.capture.suspended) this.waitForClick(this.capture);
      this.onChange();
    } catch (e) {
      this.onError(`microphone: ${e.message}`);
    }
  }

  /** Browsers start audio only after a gesture on the page: say so, and resume on the first one. */
  waitForClick(c) {
    this.needsClick = true;
    this.clickWait = () => {
      this.stopWaitingForClick();
      void c.resume().then(() => this.onChange());
    };
    window.addEventListener('pointerdown', this.clickWait, true);
    window.addEventListener('keydown', this.clickWait, true);
  }

  stopWaitingForClick() {
    if (!this.clickWait) return;
    window.removeEventListener('pointerdown', this.clickWait, true);
    window.removeEventListener('keydown', this.clickWait, true);
    this.clickWait = null;
    this.needsClick = false;
  }

  stop() {
    if (!this.capture) return;
    this.capture.stop();
    this.capture = null;
    this.stopWaitingForClick(); // a closed microphone is not resumed by the next click
    this.note('microphone off');
    this.onChange();
  }
}

/** The talk key or button: `down()` and `up()` each act once per press. */
export class PushToTalk {
  constructor({ onDown, onUp }) {
    this.onDown = onDown;
    this.onUp = onUp;
    this.held = false;
  }

  down() {
    if (this.held) return;
    this.held = true;
    this.onDown();
  }

  up() {
    if (!this.held) return;
    this.held = false;
    this.onUp();
  }
}
