import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, type Socket } from 'socket.io';
import { AsyncReasoningEngine, type EngineOptions } from '../async-reasoning/engine.ts';
import type { Mode } from '../async-reasoning/events.ts';
import type { Recognizer } from '../asr/recognizer.ts';
import { SileroVad } from '../asr/vad.ts';
import type { CausalLM } from '../llm/causal-lm.ts';
import type { Tokenizer } from '../llm/tokenizer.ts';
import { Conversation } from '../pipeline/conversation.ts';
import { ClientSchemas, LIMITS, validate, type ClientEvent, type ServerEvents } from '../protocol.ts';
import type { TtsEngine } from '../tts/engine.ts';

/** Messages held per client while the model loads (50 audio frames = 5 s of speech). */
const MAX_QUEUED_WHILE_LOADING = 50;

const RENDERER_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../renderer');

/** Content Security Policy for the renderer: nothing from anywhere but this server. */
export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; " +
  "connect-src 'self' ws: wss:; worker-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/** What a conversation needs; may still be loading when the server starts. */
export interface Components {
  lm: CausalLM;
  tokenizer: Tokenizer;
  recognizer: Recognizer;
  tts: TtsEngine;
}

export interface ServeOptions extends Partial<Components> {
  host?: string;
  port?: number;
  /** Required (generated if absent) when `host` is not a loopback address. */
  token?: string;
  /** Instead of lm/tokenizer/recognizer/tts: their loading, so the page can show its progress. */
  components?: Promise<Components>;
  modelName: string;
  mode?: Mode;
  engine?: Partial<Pick<EngineOptions, 'maxThinkingTokens' | 'maxAnswerTokens' | 'controlEvery' | 'safety' | 'sampling'>>;
}

export interface RunningServer {
  url: string;
  token: string | null;
  port: number;
  /** Tells every page (and later ones) how loading goes. */
  progress(p: ServerEvents['progress']): void;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** Every file the renderer needs, by URL path (nothing else is ever served). */
export function staticFiles(): Record<string, { file: string; type: string }> {
  const require = createRequire(import.meta.url);
  const uplot = dirname(require.resolve('uplot'));
  return {
    '/': { file: join(RENDERER_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
    '/index.html': { file: join(RENDERER_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
    '/app.js': { file: join(RENDERER_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
    '/view.js': { file: join(RENDERER_DIR, 'view.js'), type: 'text/javascript; charset=utf-8' },
    '/audio.js': { file: join(RENDERER_DIR, 'audio.js'), type: 'text/javascript; charset=utf-8' },
    '/capture-worklet.js': { file: join(RENDERER_DIR, 'capture-worklet.js'), type: 'text/javascript; charset=utf-8' },
    '/styles.css': { file: join(RENDERER_DIR, 'styles.css'), type: 'text/css; charset=utf-8' },
    '/vendor/uplot.js': { file: join(uplot, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
    '/vendor/uplot.css': { file: join(uplot, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
  };
}

/**
 * The core service: serves the renderer and speaks the protocol over socket.io. Loopback by
 * default; any other address needs the token. Every incoming payload is validated; a bad one gets
 * an `error` event and the connection goes on.
 */
export async function serve(o: ServeOptions): Promise<RunningServer> {
  const host = o.host ?? '127.0.0.1';
  const components: Promise<Components> =
    o.components ?? Promise.resolve({ lm: o.lm!, tokenizer: o.tokenizer!, recognizer: o.recognizer!, tts: o.tts! });
  components.catch(() => undefined);
  let lastProgress: ServerEvents['progress'] | null = null;
  const token = isLoopback(host) ? (o.token ?? null) : (o.token ?? randomBytes(18).toString('base64url'));
  const files = staticFiles();

  const http: HttpServer = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const entry = files[path];
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    if (req.method !== 'GET' || !entry) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    try {
      const body = await readFile(entry.file);
      res.writeHead(200, { 'Content-Type': entry.type, 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(500).end();
    }
  });

  const io = new Server(http, {
    maxHttpBufferSize: LIMITS.maxHttpBufferSize,
    serveClient: true,
    // Only pages this server served may connect (a hostile web page cannot drive the assistant).
    allowRequest: (req, cb) => {
      const origin = req.headers.origin;
      const hostHeader = req.headers.host;
      cb(null, !origin || origin === `http://${hostHeader}`);
    },
  });

  io.use((socket, next) => {
    if (!token) return next();
    const given = String((socket.handshake.auth as { token?: unknown })?.token ?? '');
    const ok = given.length === token.length && timingSafeEqual(Buffer.from(given), Buffer.from(token));
    next(ok ? undefined : new Error('unauthorized: this server needs its access token'));
  });

  const vadPool: SileroVad[] = [];
  io.on('connection', async (socket: Socket) => {
    const emit = <E extends keyof ServerEvents>(event: E, payload: ServerEvents[E]) => socket.emit(event, payload);
    let conversation: Conversation | null = null;
    const queued: [ClientEvent, unknown][] = [];
    const handle = (event: ClientEvent, payload: unknown) => {
      const v = validate(event, payload);
      if (!v.ok) return emit('error', { event, message: v.message });
      if (!conversation) {
        // The model is still loading: keep a few seconds, not an unbounded backlog.
        if (queued.length >= MAX_QUEUED_WHILE_LOADING) queued.shift();
        return queued.push([event, v.value]);
      }
      const c = conversation;
      const value = v.value as never;
      switch (event) {
        case 'audio':
          void c.pushAudio(value);
          break;
        case 'text':
          c.text((value as { text: string }).text);
          break;
        case 'ptt-down':
          c.pttDown();
          break;
        case 'ptt-up':
          void c.pttUp();
          break;
        case 'interrupt':
          c.interrupt();
          break;
        case 'settings':
          c.settings(value);
          break;
        case 'playback':
          c.playback(value);
          break;
      }
    };
    socket.onAny((event: string, payload: unknown) => {
      if (!(event in ClientSchemas)) emit('error', { event: String(event).slice(0, 40), message: 'unknown event' });
      else handle(event as ClientEvent, payload);
    });
    try {
      if (lastProgress) emit('progress', lastProgress);
      const c = await components;
      const vad = vadPool.pop() ?? (await SileroVad.load());
      vad.reset();
      const engine = new AsyncReasoningEngine({ lm: c.lm, tokenizer: c.tokenizer, ...o.engine });
      conversation = new Conversation({ engine, vad, recognizer: c.recognizer, tts: c.tts, emit, mode: o.mode ?? 'async' });
      emit('hello', { version: '0.1.0', model: o.modelName, mode: o.mode ?? 'async', handsFree: true });
      for (const [e, p] of queued.splice(0)) handle(e, p);
      socket.on('disconnect', async () => {
        await conversation?.close();
        vadPool.push(vad);
      });
    } catch (e) {
      emit('error', { event: 'connection', message: (e as Error).message });
    }
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(o.port ?? 0, host, () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/${token ? `#token=${token}` : ''}`,
    token,
    port,
    progress: (p) => {
      lastProgress = p;
      io.emit('progress', p);
    },
    close: async () => {
      io.close();
      await new Promise<void>((r) => http.close(() => r()));
      for (const v of vadPool) await v.close();
    },
  };
}
