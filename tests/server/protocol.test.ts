import { describe, expect, it } from 'vitest';
import { PocketsphinxRecognizer } from '../../src/asr/pocketsphinx.ts';
import { serve } from '../../src/server/serve.ts';
import { EspeakNgEngine } from '../../src/tts/engine.ts';
import { serverFixture } from '../helpers/server.ts';
import { next } from '../helpers/socket.ts';

const fx = serverFixture('asyncvoice-proto-', 2048);
const start = (host = '127.0.0.1') => fx.start({ host });
const client = fx.client;

describe('protocol', () => {
  it('rejects malformed, wrong-typed and oversized payloads with an error event, and keeps serving', async () => {
    const srv = await start();
    const c = client(srv.port);
    await next(c, 'hello');
    const bad: [string, unknown, RegExp][] = [
      ['text', { text: 42 }, /text/],
      ['text', { text: '' }, /text/],
      ['text', { text: 'x'.repeat(5000) }, /text/],
      ['text', { text: 'hi', extra: true }, /unrecognized|extra/i],
      ['text', 'just a string', /object/i],
      ['settings', { mode: 'turbo' }, /mode/],
      ['playback', { chunkId: -1, event: 'start' }, /chunkId/],
      ['audio', new Uint8Array(3), /PCM16/],
      ['audio', new Uint8Array(40_000), /at most 32000 bytes/],
      ['audio', { not: 'audio' }, /audio/],
      ['launch-missiles', {}, /unknown event/],
    ];
    for (const [event, payload, msg] of bad) {
      const err = next<{ event: string; message: string }>(c, 'error');
      c.emit(event, payload);
      const e = await err;
      expect(e.message, `${event} ${JSON.stringify(payload).slice(0, 40)}`).toMatch(msg);
    }
    // Still serving this very connection.
    const transcript = next<{ text: string; final: boolean }>(c, 'transcript');
    const answer = next<{ text: string }>(c, 'answer');
    c.emit('text', { text: 'Hello there' });
    expect(await transcript).toMatchObject({ text: 'Hello there', final: true });
    await answer;
    await next(c, 'metrics');
  }, 60_000);

  it('settings change the next turn: mode and answer budget', async () => {
    const srv = await start();
    const c = client(srv.port);
    await next(c, 'hello');
    c.emit('settings', { mode: 'nothink', maxAnswerTokens: 3 });
    const answers: string[] = [];
    let thinking = 0;
    c.on('answer', (a: { text: string }) => answers.push(a.text));
    c.on('thinking', () => thinking++);
    const done = new Promise<void>((res) => c.on('metrics', (m: { done: boolean }) => m.done && res()));
    c.emit('text', { text: 'Count to ten.' });
    await done;
    expect(answers).toHaveLength(3);
    expect(thinking).toBe(0);
  }, 30_000);

  it('a message beyond the transport limit drops only that client', async () => {
    const srv = await start();
    const big = client(srv.port);
    await next(big, 'hello');
    const gone = next(big, 'disconnect');
    big.emit('audio', new Uint8Array(1024 * 1024));
    await gone;
    const other = client(srv.port);
    await next(other, 'hello');
  }, 30_000);

  it('pages from another origin may not connect', async () => {
    const srv = await start();
    const c = client(srv.port, { extraHeaders: { Origin: 'http://evil.example' } });
    const err = await next<Error>(c, 'connect_error');
    expect(String(err.message)).toMatch(/websocket error|forbidden|xhr/i);
  });

  it('bound to a non-loopback address, a client without the token is refused; with it, served', async () => {
    const srv = await start('0.0.0.0');
    expect(srv.token).toMatch(/^[\w-]{20,}$/);
    expect(srv.url).toContain(`#token=${srv.token}`);
    // The printed address is one the server answers to (not 0.0.0.0, which its Host check refuses).
    expect(srv.url).not.toContain('0.0.0.0');
    expect((await fetch(srv.url.replace(/#.*$/, ''))).status).toBe(200);
    const anon = client(srv.port);
    expect(String((await next<Error>(anon, 'connect_error')).message)).toMatch(/unauthorized/);
    const wrong = client(srv.port, { auth: { token: 'x'.repeat(srv.token!.length) } });
    expect(String((await next<Error>(wrong, 'connect_error')).message)).toMatch(/unauthorized/);
    const ok = client(srv.port, { auth: { token: srv.token } });
    expect(await next<{ model: string }>(ok, 'hello')).toMatchObject({ model: 'test' });
  });

  it('while the model loads, pages see its progress; events sent meanwhile wait for it', async () => {
    let ready!: () => void;
    const gate = new Promise<void>((r) => (ready = r));
    const srv = await serve({
      port: 0,
      modelName: 'later',
      components: gate.then(() => ({ lm: fx.lm, tokenizer: fx.tokenizer, recognizer: new PocketsphinxRecognizer(), tts: new EspeakNgEngine() })),
      engine: { maxThinkingTokens: 8, maxAnswerTokens: 4 },
    });
    fx.own(srv);
    const c = client(srv.port);
    await next(c, 'connect');
    const progress = next<{ what: string; done: number; total: number }>(c, 'progress');
    srv.progress({ what: 'building the model graph (layer 3)', done: 3, total: 10 });
    expect(await progress).toEqual({ what: 'building the model graph (layer 3)', done: 3, total: 10 });
    // A page that connects later gets the latest progress at once.
    const late = client(srv.port);
    expect(await next(late, 'progress')).toMatchObject({ done: 3 });
    const transcript = next<{ text: string }>(c, 'transcript');
    c.emit('text', { text: 'Are you there?' });
    const hello = next<{ model: string }>(c, 'hello');
    ready();
    expect(await hello).toMatchObject({ model: 'later' });
    expect(await transcript).toMatchObject({ text: 'Are you there?' });
  }, 30_000);

  it('serves the renderer with a strict CSP and nothing else', async () => {
    const srv = await start();
    const page = await fetch(`http://127.0.0.1:${srv.port}/`);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'; script-src 'self'/);
    expect(await page.text()).toContain('<script type="module" src="/app.js">');
    for (const p of ['/../package.json', '/%2e%2e/package.json', '/src/server/serve.ts', '/node_modules/uplot/package.json']) {
      expect((await fetch(`http://127.0.0.1:${srv.port}${p}`)).status, p).toBe(404);
    }
  });
});
