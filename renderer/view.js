// DOM updates. Model and user text only ever reach the page through textContent: never as HTML.

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
      assistant.append(el('span', 'tag', 'assistant'), el('span', 'text', ''));
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

const STAMPS = [
  ['userSpeechStart', 'user speech start'],
  ['firstPartial', 'first partial'],
  ['userSpeechEnd', 'user speech end'],
  ['turnEnd', 'turn end'],
  ['finalTranscript', 'final transcript'],
  ['firstThinkingToken', 'first thinking token'],
  ['firstAnswerToken', 'first answer token'],
  ['firstChunkReady', 'first chunk ready'],
  ['firstAudioStart', 'first audio start'],
  ['lastAudioEnd', 'last audio end'],
];

/** One turn's timeline: every stamp on a shared scale (ms from the end of the user's speech). */
export function renderTimeline(m) {
  const box = $('timeline');
  box.replaceChildren();
  const values = [];
  for (const [k] of STAMPS) if (typeof m.stamps[k] === 'number') values.push(m.stamps[k]);
  for (const c of m.chunks) {
    for (const v of [c.readyMs, c.audioStartMs, c.audioEndMs]) if (typeof v === 'number') values.push(v);
  }
  const lo = Math.min(0, ...values);
  const hi = Math.max(1, ...values);
  const row = (label, ms, cls) => {
    const r = el('div', `row ${cls ?? ''}`);
    r.dataset.stamp = label;
    const bar = el('div', 'bar');
    if (typeof ms === 'number') {
      const dot = el('span');
      dot.style.left = `${((ms - lo) / (hi - lo)) * 100}%`;
      bar.append(dot);
    }
    r.append(el('span', 'label', label), bar, el('span', 'ms', typeof ms === 'number' ? `${Math.round(ms)} ms` : '—'));
    box.append(r);
  };
  for (const [k, label] of STAMPS) row(label, m.stamps[k]);
  for (const c of m.chunks) {
    row(`chunk ${c.chunkId} ready`, c.readyMs, 'chunk');
    row(`chunk ${c.chunkId} audio start`, c.audioStartMs, 'audio');
    row(`chunk ${c.chunkId} audio end`, c.audioEndMs, 'audio');
  }
  const fig = $('figures');
  fig.replaceChildren();
  const add = (k, v) => fig.append(el('dt', '', k), el('dd', '', v === null || v === undefined ? '—' : `${Math.round(v)} ms`));
  add('first answer token', m.firstAnswerTokenMs);
  add('voice to voice', m.voiceToVoiceMs);
  add('total delay', m.totalDelayMs);
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
