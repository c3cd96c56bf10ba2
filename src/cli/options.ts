import { isIP } from 'node:net';
import { InvalidArgumentError } from 'commander';

/**
 * Parsers for option values, shared by every command. Each names the flag and the range it takes,
 * so a bad value is one clear line (and exit 2), never a stack trace or a silently odd run.
 */
export function intArg(name: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}, got "${v}"`);
    }
    return n;
  };
}

export function floatArg(name: string, min = -Infinity, max = Infinity, opts: { minExclusive?: boolean } = {}) {
  return (v: string): number => {
    const n = Number(v);
    const low = opts.minExclusive ? n > min : n >= min;
    if (v.trim() === '' || !Number.isFinite(n) || !low || n > max) {
      const range = `${opts.minExclusive ? 'above' : 'at least'} ${min}${Number.isFinite(max) ? ` and at most ${max}` : ''}`;
      throw new InvalidArgumentError(`${name} must be a number ${range}, got "${v}"`);
    }
    return n;
  };
}

/** A TCP port: 0 (any free one) to 65535. */
export const portArg = intArg('--port', 0, 65535);

/** A bind address: an IP literal or a plain host name (checked before anything loads). */
export function hostArg(v: string): string {
  const bare = v.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare)) return bare;
  // Digits and dots that are not an IPv4 address would otherwise pass as a host name.
  if (/^[\d.]+$/.test(bare)) throw new InvalidArgumentError(`--host "${v}" is not an IPv4 address`);
  if (/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(bare)) return bare;
  throw new InvalidArgumentError(`--host "${v}" is not an IP address or host name`);
}
