import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, type Socket } from 'socket.io';
import type { Mode } from '../async-reasoning/events.ts';
import { promptSetFor } from '../async-reasoning/prompts.ts';
import { checkEndOfMessage, type EndOfMessageCheck } from '../async-reasoning/end-of-message.ts';
import { StandingPrompts } from '../async-reasoning/standing-prompts.ts';
import { LIMITS, type ServerEvents } from '../protocol.ts';
import { accessPolicy, isLoopback, tokenMatches, type AccessPolicy } from './access.ts';
import { ClientLink, VadPool, type Components, type EngineSettings } from './client-link.ts';
import { DEFAULT_MAX_CONVERSATIONS } from './limits.ts';

export { isLoopback } from './access.ts';
export type { Components } from './client-link.ts';

const RENDERER_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../renderer');

/** The product's version, from package.json (what `hello` tells the page). */
export const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/**
 * Content Security Policy for the renderer: nothing from anywhere but this server. `'self'`
 * covers the page's own WebSocket (CSP level 3), so no other host can be reached from it.
 */
export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; " +
  "connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

export interface ServeOptions extends Partial<Components> {
  host?: string;
  port?: number;
  /** Required (generated if absent) when `host` is not a loopback address. */
  token?: string;
  /** Instead of lm/tokenizer/recognizer/tts: their loading, so the page can show its progress. */
  components?: Promise<Components>;
  modelName: string;
  mode?: Mode;
  engine?: EngineSettings;
  /** Clients connected at once; one more is refused with a clear message. */
  maxConversations?: number;
  /** Further host names (e.g. the machine's DNS name) pages may use to reach a non-loopback bind. */
  allowedHosts?: string[];
  /**
   * How a spoken turn ends: 'auto' (default) ends it on the words where the model tells finished
   * messages from unfinished ones (checked once at load), else on silence; or either, forced.
   */
  turnEnd?: 'auto' | 'words' | 'silence';
  /** Told once what the turn-end check found (a line for the log). */
  onTurnEndCheck?: (summary: string) => void;
}

export interface RunningServer {
  url: string;
  token: string | null;
  port: number;
  /** Conversations open now. */
  readonly connections: number;
  /** Tells every page (and later ones) how loading goes. */
  progress(p: ServerEvents['progress']): void;
  close(): Promise<void>;
}

/** Every file the renderer needs, by URL path (nothing else is ever served). */
export function staticFiles(): Record<string, { file: string; type: string }> {
  const require = createRequire(import.meta.url);
  const uplot = dirname(require.resolve('uplot'));
  const socketIoClient = join(dirname(require.resolve('socket.io/package.json')), 'client-dist');
  const JS = 'text/javascript; charset=utf-8';
  const page = { file: join(RENDERER_DIR, 'index.html'), type: 'text/html; charset=utf-8' };
  const scripts = ['app.js', 'view.js', 'audio.js', 'chart.js', 'microphone.js', 'protocol.js', 'capture-worklet.js'];
  return {
    '/': page,
    '/index.html': page,
    ...Object.fromEntries(scripts.map((f) => [`/${f}`, { file: join(RENDERER_DIR, f), type: JS }])),
    '/styles.css': { file: join(RENDERER_DIR, 'styles.css'), type: 'text/css; charset=utf-8' },
    '/vendor/uplot.js': { file: join(uplot, 'uPlot.iife.min.js'), type: JS },
    '/vendor/uplot.css': { file: join(uplot, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
    // Served from this table, not by socket.io itself: socket.io's own file route skips the Host check.
    '/vendor/socket.io.esm.min.js': { file: join(socketIoClient, 'socket.io.esm.min.js'), type: JS },
  };
}

/**
 * The core service: serves the renderer and speaks the protocol over socket.io. Loopback by
 * default; any other address needs the token. Requests must name this server (Host) and come from
 * its own pages (Origin). Every incoming payload is validated; a bad one gets an `error` event and
 * the connection goes on; a client's departure releases all it held.
 */
export async function serve(o: ServeOptions): Promise<RunningServer> {
  const host = o.host ?? '127.0.0.1';
  const maxConversations = o.maxConversations ?? DEFAULT_MAX_CONVERSATIONS;
  const loaded: Promise<Components> =
    o.components ?? Promise.resolve({ lm: o.lm!, tokenizer: o.tokenizer!, recognizer: o.recognizer!, tts: o.tts! });
  // The standing prompts are encoded once, for every conversation this server will hold.
  let lastProgress: ServerEvents['progress'] | null = null;
  // Called only once `io` exists: `loaded` settles no earlier than the next microtask.
  const progress = (p: ServerEvents['progress']) => {
    lastProgress = p;
    io.emit('progress', p);
  };
  const components = loaded.then(async (c) => {
    progress({ what: 'encoding the standing prompts', done: 0, total: null });
    const prompts = promptSetFor((t) => c.tokenizer.tokenId(t) !== undefined, { safety: o.engine?.safety });
    const standing = new StandingPrompts(c.lm, c.tokenizer, prompts);
    await standing.ready;
    const turnEnd = await turnEndMode(o.turnEnd ?? 'auto', () => checkEndOfMessage(c.lm, c.tokenizer, prompts), o.onTurnEndCheck);
    progress({ what: 'ready', done: 1, total: 1 });
    return { ...c, standing, turnEnd };
  });
  components.catch(() => undefined);
  const token = isLoopback(host) ? (o.token ?? null) : (o.token ?? randomBytes(18).toString('base64url'));
  const files = staticFiles();
  let access: AccessPolicy | null = null; // known once the port is

  // The Host check runs in front of this handler and socket.io's (below), for every path.
  const http: HttpServer = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const entry = Object.hasOwn(files, path) ? files[path] : undefined;
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    const head = req.method === 'HEAD';
    if ((req.method !== 'GET' && !head) || !entry) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    try {
      const body = await readFile(entry.file);
      res.writeHead(200, {
        'Content-Type': entry.type,
        'Content-Length': body.byteLength,
        'Content-Security-Policy': CSP,
        'X-Content-Type-Options': 'nosniff',
        'Cache-Control': 'no-store',
      });
      res.end(head ? undefined : body);
    } catch {
      res.writeHead(500).end();
    }
  });
  http.on('clientError', (_e, sock) => sock.destroy());

  const io = new Server(http, {
    maxHttpBufferSize: LIMITS.maxHttpBufferSize,
    serveClient: false,
    // Only this server's own pages, reaching it by one of its own names, may connect.
    allowRequest: (req, cb) => cb(null, access?.allows(req.headers.host, req.headers.origin) ?? false),
  });

  // socket.io put its own request handler in front of ours; the Host check goes in front of both.
  const handlers = http.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  http.removeAllListeners('request');
  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!access?.allowsHost(req.headers.host)) {
      res.writeHead(421, { 'Content-Type': 'text/plain' }).end('this server does not answer to that host name');
      return;
    }
    for (const h of handlers) h(req, res);
  });

  const links = new Set<ClientLink>();
  // A place is taken by a connected client and freed the moment it disconnects, not once all it
  // held has been given back (that can take a turn's step): a reload must find its place free.
  const connected = new Set<Socket>();
  io.use((socket, next) => {
    try {
      if (token && !tokenMatches((socket.handshake.auth as { token?: unknown } | undefined)?.token, token)) {
        return next(new Error('unauthorized: this server needs its access token'));
      }
      if (connected.size >= maxConversations) {
        return next(new Error(`busy: this server holds ${maxConversations} conversations already (its --max-clients); try again when one ends`));
      }
      next();
    } catch {
      next(new Error('unauthorized: malformed handshake'));
    }
  });

  const vads = new VadPool();
  const ctx = { components, vads, modelName: o.modelName, version: VERSION, mode: o.mode ?? 'async', engine: o.engine ?? {}, lastProgress: () => lastProgress };
  io.on('connection', (socket: Socket) => {
    if (connected.size >= maxConversations) {
      // Handshakes that passed the check together: the later ones are turned away here.
      socket.emit('error', { event: 'connection', message: `busy: this server holds ${maxConversations} conversations already; try again when one ends` });
      socket.disconnect(true);
      return;
    }
    connected.add(socket);
    socket.on('disconnect', () => connected.delete(socket));
    const link = new ClientLink(socket, ctx);
    links.add(link);
    void link.released.then(() => links.delete(link));
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(o.port ?? 0, host, () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  access = accessPolicy(host, port, o.allowedHosts);
  const shownHost = shownAddress(host);
  return {
    url: `http://${shownHost}:${port}/${token ? `#token=${token}` : ''}`,
    token,
    port,
    get connections() {
      return links.size;
    },
    progress,
    close: async () => {
      io.close();
      await Promise.all([...links].map((l) => l.close()));
      await new Promise<void>((r) => http.close(() => r()));
      await vads.close();
      const c = await components.catch(() => null);
      await c?.standing.drop();
    },
  };
}

/** The address to print for a bind: a wildcard is shown as one of the machine's own addresses, which the Host check accepts. */
function shownAddress(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal);
    return external?.address ?? '127.0.0.1';
  }
  return host.includes(':') ? `[${host}]` : host;
}

/** The turn-end mode for every conversation: forced, or from one check of the model (said once). */
async function turnEndMode(want: 'auto' | 'words' | 'silence', check: () => Promise<EndOfMessageCheck>, tell?: (s: string) => void): Promise<'words' | 'silence'> {
  if (want !== 'auto') {
    tell?.(`end of turn from ${want === 'words' ? 'the words (forced)' : 'silence alone (forced)'}`);
    return want;
  }
  const r = await check();
  tell?.(r.summary);
  return r.usable ? 'words' : 'silence';
}
