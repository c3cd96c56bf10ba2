import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where built graphs live: $ASYNCVOICE_CACHE_DIR, else $XDG_CACHE_HOME/asyncvoice, else ~/.cache/asyncvoice. */
export function cacheRoot(): string {
  if (process.env.ASYNCVOICE_CACHE_DIR) return process.env.ASYNCVOICE_CACHE_DIR;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'asyncvoice');
}
