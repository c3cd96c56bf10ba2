import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server as HttpServer } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { chromium, type Browser } from 'playwright-core';
import { CSP, staticFiles } from '../../src/server/serve.ts';
import { needTools } from '../helpers/tools.ts';

// The renderer against a scripted core: whatever the model or the recogniser says arrives as
// protocol events, and must show up as text.
const EVIL = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
let http: HttpServer;
let io: Server;
let browser: Browser;
let port = 0;

beforeAll(async () => {
  await needTools('chromium');
  const files = staticFiles();
  http = createServer((req, res) => {
    const f = files[new URL(req.url!, 'http://x').pathname];
    if (!f) return res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': f.type, 'Content-Security-Policy': CSP }).end(readFileSync(f.file));
  });
  io = new Server(http);
  io.on('connection', (s) => {
    s.emit('hello', { version: 't', model: EVIL, mode: 'async', handsFree: true });
    s.emit('transcript', { turnId: 1, text: EVIL, final: true });
    s.emit('thinking', { turnId: 1, text: EVIL });
    s.emit('answer', { turnId: 1, text: EVIL });
    s.emit('error', { event: 'x', message: EVIL });
    s.emit('metrics', { turnId: 1, stamps: { firstAnswerToken: 5 }, chunks: [], firstAnswerTokenMs: 5, voiceToVoiceMs: null, totalDelayMs: null, done: true });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  port = (http.address() as AddressInfo).port;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run',
    // Hands-free pages open the microphone on hello: a fake one, so no microphone error replaces the one under test.
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'] });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  io?.close();
});

describe('renderer escaping', () => {
  it('model, user and error text containing HTML render literally and run nothing', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => document.querySelector('#turns li.assistant .text')?.textContent?.includes('<img'));
    expect(await page.textContent('#turns li.user .text')).toBe(EVIL);
    expect(await page.textContent('#turns li.assistant .text')).toBe(EVIL);
    expect(await page.textContent('#thinking')).toBe(EVIL);
    expect(await page.textContent('#status')).toContain(EVIL);
    expect(await page.textContent('#error')).toContain(EVIL);
    expect(await page.$$('main img, main script, header img, #error img')).toHaveLength(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  });
});
