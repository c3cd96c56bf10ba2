import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The model that ships inside the project (assets/asyncvoice-arith, trained by training/run.sh): a
 * small reasoning model for spoken arithmetic in the format the engine speaks, so every command
 * says something meaningful without a download.
 */
export const DEFAULT_MODEL = fileURLToPath(new URL('../../../assets/asyncvoice-arith', import.meta.url));

/** The shipped model's folder when it is there (a checkout or package without it has none). */
export function shippedModel(): string | undefined {
  return existsSync(join(DEFAULT_MODEL, 'config.json')) ? DEFAULT_MODEL : undefined;
}
