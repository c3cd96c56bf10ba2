// DOM updates. Model and user text only ever reach the page through textContent: never as HTML.
import { STAMP_NAMES } from '/protocol.js';

const $ = (id) => document.getElementById(id);

export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class ConversationView {
  constructor() {
    this.list = $('turns');
    this.turns = new Map(); // turnId → { user, userText, assistant, answerText }
  }

  turn(turnId) {
    let t = this.turns.get(turnId);
    if (!t) {
      const user = el('li', 'user partial');
      user.append(el('span', 'tag', 'you'), el('span', 'text', ''));
      const assistant = el('li', 'assistant');
      const thoughts = el('details', 'thoughts');
      thoughts.open = true;
      thoughts.append(el('summary', '', 'thinking'), el('span', 'body', ''));
      assistant.append(el('span', 'tag', 'assistant'), thoughts, el('span', 'text', ''));
      assistant.hidden = true;
      this.list.append(user, assistant);
      t = { user, assistant };
      this.turns.set(turnId, t);
    }
    return t;
  }

  transcript(turnId, text, final) {
    const t = this.turn(turnId);
    t.user.querySelector('.text').textContent = text;
    t.user.classList.toggle('partial', !final);
    if (final) t.user.dataset.final = 'true';
    this.scroll();
  }

  /** This turn's thinking, kept with the turn (open while it runs, folded once it is over). */
  thinking(turnId, delta) {
    const t = this.turn(turnId);
    t.assistant.hidden = false;
    t.assistant.querySelector('.thoughts .body').append(delta);
  }

  /** A line about the thinking itself (its budget ran out, …), shown in the turn's thoughts. */
  thinkingNotice(turnId, text) {
    const t = this.turn(turnId);
    t.assistant.querySelector('.thoughts').append(el('span', 'notice', text));
  }

  turnDone(turnId) {
    const t = this.turns.get(turnId);
    if (t) t.assistant.querySelector('.thoughts').open = false;
  }

  answer(turnId, delta) {
    const t = this.turn(turnId);
    t.assistant.hidden = false;
    t.assistant.querySelector('.text').append(delta); // a text node: never parsed as HTML, and struck spans stay
    this.scroll();
  }

  /** The answer was cut after `heardChars` characters: the rest was written but never said. */
  interrupted(turnId, heardChars) {
    const t = this.turns.get(turnId);
    if (!t) return;
    t.assistant.classList.add('interrupted');
    const text = t.assistant.querySelector('.text');
    const all = text.textContent;
    if (heardChars >= all.length) return;
    text.replaceChildren(el('span', 'heard', all.slice(0, heardChars)), el('span', 'unheard', all.slice(heardChars)));
  }

  scroll() {
    this.list.scrollTop = this.list.scrollHeight;
  }
}

export function setThinking(text, append) {
  const pre = $('thinking');
  pre.textContent = append ? pre.textContent + text : text;
  pre.scrollTop = pre.scrollHeight;
}

const STAMP_LABELS = {
  userSpeechStart: 'you started speaking',
  firstPartial: 'first partial transcript',
  userSpeechEnd: 'your voice ended',
  turnEnd: 'turn end decided',
  finalTranscript: 'final transcript',
  firstThinkingToken: 'first thinking token',
  firstAnswerToken: 'first answer token',
  firstChunkReady: 'first speech chunk ready',
  firstAudioStart: 'first audio',
  lastAudioEnd: 'last audio ended',
};

const FIGURES = [
  ['voiceToVoiceMs', 'voice to voice', 'end of your voice → first audio'],
  ['firstAnswerTokenMs', 'first answer', 'end of your voice → first answer token'],
  ['totalDelayMs', 'total delay', 'sum of your waits before each chunk of speech'],
];

/** How the turn end was decided: on the user's words (the model read a finished message) or on silence, with P(end). */
export function turnEndLabel(te) {
  if (!te) return STAMP_LABELS.turnEnd;
  const p = typeof te.pEnd === 'number' ? `, P(end) ${te.pEnd.toFixed(2)}` : '';
  return `turn end decided (${te.by === 'words' ? 'on your words' : 'on silence'}${p})`;
}

/**
 * One turn's timeline: everything that happened, in the order it happened, on one axis in ms from
 * the end of the user's voice (the red zero line; negative = while they were still speaking).
 * Spans for the user's speech, recognition and each chunk's playback; points for the rest.
 */
export function renderTimeline(m) {
  $('timeline-turn').textContent = `turn ${m.turnId}${m.done ? '' : ' (in progress)'}`;
  const fig = $('figures');
  fig.replaceChildren();
  for (const [key, name, what] of FIGURES) {
    const v = m[key];
    const dd = el('dd', '', v === null || v === undefined ? '—' : `${Math.round(v)} ms`);
    dd.append(el('small', '', what));
    fig.append(el('dt', '', name), dd);
  }
  const st = m.stamps;
  const items = [];
  const point = (label, at, cls = '', key = '') => typeof at === 'number' && items.push({ label, start: at, end: undefined, cls, key });
  const span = (label, a, b, cls = 'span', key = '') => typeof a === 'number' && items.push({ label, start: a, end: typeof b === 'number' ? b : undefined, cls, key });
  span('you spoke', st.userSpeechStart, st.userSpeechEnd, 'span', 'userSpeechStart');
  span('recognising the rest', st.turnEnd, st.finalTranscript);
  for (const k of STAMP_NAMES.filter((n) => n !== 'userSpeechStart')) { // the start is the span's left end
    point(k === 'turnEnd' ? turnEndLabel(m.turnEnd) : STAMP_LABELS[k], st[k], k === 'userSpeechEnd' ? 'zero' : k === 'firstAudioStart' ? 'audio' : '', k);
  }
  for (const c of m.chunks) {
    point(`chunk ${c.chunkId} ready`, c.readyMs, 'chunk');
    span(`chunk ${c.chunkId} playing`, c.audioStartMs, c.audioEndMs, 'audio span');
  }
  items.sort((a, b) => a.start - b.start);
  const times = items.flatMap((i) => (i.end === undefined ? [i.start] : [i.start, i.end]));
  const lo = Math.min(0, ...times);
  const hi = Math.max(1, ...times);
  const x = (ms) => `${((ms - lo) / (hi - lo)) * 100}%`;
  const box = $('timeline');
  box.replaceChildren();
  for (const i of items) {
    const r = el('div', `row ${i.cls}`);
    r.dataset.ms = String(Math.round(i.start));
    if (i.key) r.dataset.stamp = i.key;
    const bar = el('div', 'bar');
    const mark = el('span');
    mark.style.left = x(i.start);
    if (i.end !== undefined) mark.style.width = `max(.35rem, ${((i.end - i.start) / (hi - lo)) * 100}%)`;
    const zero = el('span', 'zero-line');
    zero.style.left = x(0);
    bar.append(zero, mark);
    const ms = i.end === undefined ? `${Math.round(i.start)} ms` : `${Math.round(i.start)}…${Math.round(i.end)}`;
    r.append(el('span', 'label', i.label), bar, el('span', 'ms', ms));
    box.append(r);
  }
  // The axis: zero (the end of the user's voice) and both ends.
  const axis = el('div', 'axis');
  const ticks = el('div', 'ticks');
  for (const t of [lo, 0, hi]) {
    const s = el('span', '', t === 0 ? '0' : `${Math.round(t)} ms`);
    s.style.left = x(t);
    ticks.append(s);
  }
  axis.append(el('span', '', 'ms from end of voice'), ticks, el('span'));
  box.append(axis);
}

export function setStatus(text) {
  $('status').textContent = text;
}

export function setError(text) {
  $('error').textContent = text;
}

export function setVad(speaking) {
  const v = $('vad');
  v.textContent = speaking ? 'you are speaking' : 'silent';
  v.classList.toggle('speaking', speaking);
}
