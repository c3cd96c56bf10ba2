import { createHash, timingSafeEqual } from 'node:crypto';
import { networkInterfaces } from 'node:os';

/**
 * Who may talk to the core service. A browser page decides neither the Host header nor the
 * Origin it sends by itself, but a DNS-rebinding page controls both names' *host part*: it makes
 * `attacker.example` resolve to us, so Host and Origin agree with each other and say nothing.
 * What the attacker cannot choose is which names this server answers to, so both are checked
 * against the addresses the server is really bound to (and the loopback names).
 */

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || host.startsWith('127.');
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]' || host === '';
}

/** `host` as it appears in a Host header or URL (IPv6 in brackets), lower case. */
function asUrlHost(host: string): string {
  const h = host.toLowerCase();
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
}

export interface AccessPolicy {
  /** `host:port` values a request's Host header may carry. */
  readonly hosts: ReadonlySet<string>;
  /** Origins a page that connects may come from. */
  readonly origins: ReadonlySet<string>;
  /** Whether a request with these headers is for this server and from one of its pages. */
  allows(hostHeader: string | undefined, origin: string | undefined): boolean;
  /** Whether this Host header names this server. */
  allowsHost(hostHeader: string | undefined): boolean;
}

/**
 * The names this server answers to: its bound address, the loopback names (a loopback or wildcard
 * bind is reachable through them), every local interface address for a wildcard bind, and any
 * `extraHosts` the operator names (a DNS name for the machine).
 */
export function accessPolicy(boundHost: string, port: number, extraHosts: string[] = []): AccessPolicy {
  const names = new Set<string>([asUrlHost(boundHost)]);
  if (isLoopback(boundHost) || isWildcard(boundHost)) for (const n of ['localhost', '127.0.0.1', '[::1]']) names.add(n);
  if (isWildcard(boundHost)) {
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.add(asUrlHost(a.address.replace(/%.*$/, '')));
    for (const w of ['0.0.0.0', '[::]']) names.delete(w);
  }
  for (const h of extraHosts) names.add(asUrlHost(h));
  // On port 80 browsers send the bare name.
  const hosts = new Set([...names].flatMap((n) => (port === 80 ? [`${n}:80`, n] : [`${n}:${port}`])));
  const origins = new Set([...hosts].map((h) => `http://${h}`));
  const allowsHost = (h: string | undefined) => typeof h === 'string' && hosts.has(h.toLowerCase());
  return {
    hosts,
    origins,
    allowsHost,
    // No Origin: not a browser page (a CLI client or the test client); the token guards those where it matters.
    allows: (h, origin) => allowsHost(h) && (origin === undefined || origins.has(origin.toLowerCase())),
  };
}

/**
 * Whether a client's token is this server's. Total over any input (a hostile handshake may send
 * any JSON): anything but a string is refused, and both sides are hashed to equal lengths before
 * the constant-time compare, so neither type nor byte length can throw.
 */
export function tokenMatches(given: unknown, token: string): boolean {
  if (typeof given !== 'string') return false;
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(token));
}
