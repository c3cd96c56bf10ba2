// A client that sends 1 s PCM frames as fast as the server reads them, for SECONDS, from its own
// process (so the server's memory is measured alone). Usage: node flood-client.mjs URL SECONDS
// Prints one JSON line: frames sent, the server's notices about dropped audio.
import { io } from 'socket.io-client';

const [url, seconds] = [process.argv[2], Number(process.argv[3])];
const s = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
const notices = [];
let barrier = null;
s.on('error', (e) => {
  if (e?.event === 'barrier') barrier?.();
  else if (e?.event === 'audio') notices.push(e.message);
});
await new Promise((res, rej) => {
  s.once('hello', res);
  s.once('connect_error', rej);
  setTimeout(() => rej(new Error('no hello')), 20_000);
});
const frame = new Int16Array(16000);
let seed = 7;
for (let i = 0; i < frame.length; i++) frame[i] = Math.round(6000 * Math.sin(i / 7) + (((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5) * 4000);
const bytes = new Uint8Array(frame.buffer);
let frames = 0;
const until = Date.now() + seconds * 1000;
while (Date.now() < until) {
  for (let i = 0; i < 20; i++) s.emit('audio', bytes);
  frames += 20;
  // An unknown event as a barrier: its answer comes once the server has read everything before it.
  await new Promise((res) => {
    barrier = res;
    s.emit('barrier', {});
  });
}
console.log(JSON.stringify({ frames, notices }));
s.close();
process.exit(0);
