// The renderer: one socket to the core service, the conversation, live thinking, playback and
// the latency dashboard. Works the same in Electron and in a plain browser.
import { io } from '/vendor/socket.io.esm.min.js';
import { SpeechPlayer } from '/audio.js';
import { TurnChart } from '/chart.js';
import { Microphone, PushToTalk } from '/microphone.js';
import { ConversationView, renderTimeline, setError, setStatus, setThinking, setVad } from '/view.js';
import { ClientEvent as C, LIMITS, ServerEvent as S } from '/protocol.js';

const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? undefined;
const socket = io({ auth: token ? { token } : {}, transports: ['websocket'] });
const view = new ConversationView();
const $ = (id) => document.getElementById(id);

// The user's choices, kept across reloads: a page opened hands-free listens by itself.
const stored = (key, fallback) => {
  try {
    const v = localStorage.getItem(`asyncvoice.${key}`);
    return v === null ? fallback : v === 'true';
  } catch {
    return fallback; // storage off (private mode, a file: page)
  }
};
const store = (key, value) => {
  try {
    localStorage.setItem(`asyncvoice.${key}`, String(value));
  } catch {
    /* not kept, still applied */
  }
};
let handsFree = stored('handsFree', true);
let headphones = stored('headphones', false);
$('hands-free').checked = handsFree;
$('headphones').checked = headphones;
let thinkingTurn = -1;
const chart = new TurnChart($('chart'), setError);

const player = new SpeechPlayer((chunkId, event, heardChars) => {
  queueMicrotask(showActivity);
  if (event === 'start') {
    // What the dashboard already showed when the first audio began (metrics arrive as they happen).
    if (trace.playbackStarts === 0) trace.stampsAtFirstAudio = document.querySelectorAll('#timeline .row[data-stamp]').length;
    trace.playbackStarts++;
  }
  if (event === 'stopped') trace.playbackStops++;
  note(`playback ${event}`, `chunk ${chunkId}`);
  socket.emit(C.playback, heardChars === undefined ? { chunkId, event } : { chunkId, event, heardChars });
  document.body.dataset.playing = player.active ? 'true' : 'false';
});

// Exposed for tests and the Electron shell: a small, read-only window into what the page did.
const trace = { activity: [], listeningLagMs: [], stampsAtFirstAudio: 0, chartPoints: 0, partials: 0, finals: 0, thinking: 0, answer: 0, chunksReceived: 0, playbackStarts: 0, playbackStops: 0, stopAudio: 0, microphoneOpens: 0, interruptions: [], errors: [], log: [] };
window.asyncvoiceTrace = trace;
/** The last few hundred things that happened, with page time in ms: enough to tell why a turn went as it did. */
const note = (what, detail = '') => {
  trace.log.push(`${Math.round(performance.now())} ${what} ${detail}`.trimEnd());
  if (trace.log.length > 300) trace.log.shift();
};

// What the assistant is doing, in one line, from the events: the most pressing of the user
// speaking, audio playing, the engine's state, loading, or waiting for the user.
const activity = { loading: 'connecting…', userSpeaking: false, engine: null, interrupted: false };
function showActivity() {
  const engine = activity.engine === 'thinker_only' ? 'thinking' : activity.engine === 'thinker_and_writer' || activity.engine === 'writer_only' ? 'answering' : null;
  let label;
  if (activity.loading) label = activity.loading;
  else if (mic.needsClick) label = 'click anywhere to start listening (the browser needs a click before it plays or records audio)';
  else {
    // What the user does or hears first; the engine's work beside it, since it thinks while it listens and speaks.
    const person = activity.userSpeaking ? 'you are speaking' : activity.interrupted ? 'interrupted' : player.active ? 'speaking' : null;
    if (person) label = engine ? `${person} · ${engine}` : person;
    else label = engine ?? (mic.open || ptt.held ? 'listening' : 'ready: start the microphone, hold to talk, or type');
  }
  const a = $('activity');
  if (a.dataset.state === label) return;
  a.textContent = label;
  a.dataset.state = label;
  trace.activity.push(label);
}

socket.on('connect', () => setStatus('connected'));
socket.on('connect_error', (e) => setStatus(`cannot connect: ${e.message}`));
socket.on('disconnect', () => setStatus('disconnected'));
socket.on(S.hello, (h) => {
  setStatus(`connected · ${h.model}`);
  $('mode').value = h.mode;
  activity.loading = null;
  showActivity();
  if (h.handsFree !== handsFree) socket.emit(C.settings, { handsFree });
  if (handsFree) startMic();
});
socket.on(S.progress, (p) => {
  if (p.what === 'ready') {
    activity.loading = null;
  } else {
    const pct = p.total ? ` ${Math.floor((100 * p.done) / p.total)} %` : '';
    activity.loading = `loading: ${p.what}${pct}`;
  }
  showActivity();
});
socket.on(S.vad, (v) => {
  note(v.speaking ? 'vad speech' : 'vad silence');
  setVad(v.speaking);
  activity.userSpeaking = v.speaking;
  if (v.speaking) activity.interrupted = false;
  showActivity();
});
socket.on(S.listening, ({ lagMs }) => {
  const worst = Math.max(0, ...lagMs);
  trace.listeningLagMs.push(...lagMs);
  if (trace.listeningLagMs.length > 3000) trace.listeningLagMs.splice(0, trace.listeningLagMs.length - 3000);
  const l = $('lag');
  l.textContent = `listening lag ${worst} ms`;
  // Beyond a quarter second the user notices: turn ends and barge-ins come late.
  l.classList.toggle('behind', worst > 250);
});
socket.on(S.transcript, (t) => {
  if (!turnModes.has(t.turnId)) turnModes.set(t.turnId, $('mode').value);
  trace[t.final ? 'finals' : 'partials']++;
  note(t.final ? 'final' : 'partial', `turn ${t.turnId}: ${t.text.slice(0, 60)}`);
  view.transcript(t.turnId, t.text, t.final);
});
socket.on(S.thinking, (t) => {
  trace.thinking++;
  setThinking(t.text, thinkingTurn === t.turnId);
  view.thinking(t.turnId, t.text);
  thinkingTurn = t.turnId;
});
socket.on(S.answer, (a) => {
  trace.answer++;
  view.answer(a.turnId, a.text);
});
socket.on(S.state, (s) => {
  note('state', `turn ${s.turnId}: ${s.from} → ${s.to} (${s.reason})`);
  activity.engine = s.to === 'done' ? null : s.to;
  if (s.cause !== 'user-interrupted') activity.interrupted = false;
  if (s.cause === 'thinking-budget') view.thinkingNotice(s.turnId, '(thinking stopped: its token budget is spent)');
  if (s.cause === 'thinking-out-of-room') view.thinkingNotice(s.turnId, '(thinking stopped: the context is full)');
  if (s.to === 'done') view.turnDone(s.turnId);
  showActivity();
});
socket.on(S.interrupted, (i) => {
  trace.interruptions.push({ turnId: i.turnId, cause: i.cause, heardChars: i.heardChars });
  note('interrupted', `turn ${i.turnId} by ${i.cause}, ${i.heardChars} characters heard`);
  view.interrupted(i.turnId, i.heardChars);
  activity.interrupted = true;
  showActivity();
});
socket.on(S.speechChunk, (c) => {
  trace.chunksReceived++;
  note('speech chunk', `turn ${c.turnId} chunk ${c.chunkId}`);
  player.play(c).catch((e) => setError(`playback failed: ${e.message}`));
  document.body.dataset.playing = 'true';
});
socket.on(S.stopAudio, (s) => {
  trace.stopAudio++;
  note('stop audio', `turn ${s.turnId} (${s.cause})`);
  player.stopAll();
  document.body.dataset.playing = 'false';
});
// Every turn's latest report, so an earlier turn can be looked at while a new one fills in.
const MAX_TURNS_KEPT = 100;
const metricsByTurn = new Map();
socket.on(S.metrics, (m) => {
  const pick = $('timeline-pick');
  if (!metricsByTurn.has(m.turnId)) {
    pick.append(new Option(`turn ${m.turnId}`, String(m.turnId)));
    if (metricsByTurn.size >= MAX_TURNS_KEPT) {
      const oldest = metricsByTurn.keys().next().value;
      metricsByTurn.delete(oldest);
      pick.querySelector(`option[value="${oldest}"]`)?.remove();
    }
  }
  metricsByTurn.set(m.turnId, m);
  if (pick.value === 'latest' || pick.value === String(m.turnId)) renderTimeline(m);
  if (m.done) trace.chartPoints = chart.add(m, turnModes.get(m.turnId) ?? $('mode').value);
});
$('timeline-pick').addEventListener('change', (e) => {
  const m = e.target.value === 'latest' ? [...metricsByTurn.values()].at(-1) : metricsByTurn.get(Number(e.target.value));
  if (m) renderTimeline(m);
});
socket.on(S.error, (e) => {
  trace.errors.push(e);
  note('error', `${e.event}: ${e.message}`);
  setError(`${e.event}: ${e.message}`);
});

/** The mode each turn ran in (the setting when it started). */
const turnModes = new Map();

const mic = new Microphone({
  onFrame: (frame) => {
    if (handsFree || ptt.held) socket.emit(C.audio, new Uint8Array(frame));
  },
  onChange: () => {
    trace.microphoneOpens = mic.opens;
    $('mic').textContent = mic.open ? 'Stop microphone' : 'Start microphone';
    $('mic').classList.toggle('active', mic.open);
    showActivity();
  },
  onError: setError,
  note,
});
const startMic = () => mic.start(headphones);
const ptt = new PushToTalk({
  onDown: () => {
    $('ptt').classList.add('active');
    if (player.active) player.stopAll();
    socket.emit(C.pttDown, {});
    void startMic();
  },
  onUp: () => {
    $('ptt').classList.remove('active');
    socket.emit(C.pttUp, {});
  },
});
const pttDown = () => ptt.down();
const pttUp = () => ptt.up();

$('mic').addEventListener('click', () => (mic.open ? mic.stop() : startMic()));
$('ptt').addEventListener('pointerdown', pttDown);
$('ptt').addEventListener('pointerup', pttUp);
$('ptt').addEventListener('pointerleave', pttUp);
$('stop').addEventListener('click', () => {
  player.stopAll();
  socket.emit(C.interrupt, {});
});
$('hands-free').addEventListener('change', (e) => {
  handsFree = e.target.checked;
  store('handsFree', handsFree);
  socket.emit(C.settings, { handsFree });
  // Hands-free listens all the time; push-to-talk opens the microphone at the first press.
  if (handsFree) startMic();
  else mic.stop();
});
$('headphones').addEventListener('change', async (e) => {
  headphones = e.target.checked;
  store('headphones', headphones);
  if (!mic.open) return;
  // Audio processing is fixed when the microphone opens: reopen it with the new setting.
  mic.stop();
  await startMic();
});
$('mode').addEventListener('change', (e) => socket.emit(C.settings, { mode: e.target.value }));
for (const [id, key] of [['max-thinking', 'maxThinkingTokens'], ['max-answer', 'maxAnswerTokens']]) {
  $(id).addEventListener('change', (e) => {
    const n = Number(e.target.value);
    if (Number.isInteger(n) && n >= 1 && n <= LIMITS.maxBudgetTokens) socket.emit(C.settings, { [key]: n });
  });
}
$('text-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text-input').value.trim();
  if (!text) return;
  if (player.active) player.stopAll();
  socket.emit(C.text, { text });
  $('text-input').value = '';
});
const typing = () => document.activeElement && ['INPUT', 'SELECT', 'TEXTAREA'].includes(document.activeElement.tagName);
window.addEventListener('keydown', (e) => {
  if (e.code === 'Space' && !typing() && !e.repeat) {
    e.preventDefault();
    pttDown();
  }
});
window.addEventListener('keyup', (e) => {
  if (e.code === 'Space' && !typing()) pttUp();
});
// The Electron shell's global shortcut arrives through the preload bridge.
window.asyncvoice?.onPushToTalk?.((down) => (down ? pttDown() : pttUp()));
