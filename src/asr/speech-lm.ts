import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AudioError } from '../errors.ts';

/** What a model folder may ship for the recogniser: a word n-gram model (ARPA) of what it is spoken to with. */
export const MODEL_SPEECH_LM = 'speech.arpa';

/**
 * The language model pocketsphinx listens with: `flag` as given (a file, or "default" for its
 * general English model), else the one the model folder ships (the shipped model's knows questions
 * about numbers, which the general one mostly mishears), else its general English model.
 */
export function speechLmFor(flag: string | undefined, modelDir?: string, flagName = '--asr-lm'): string | undefined {
  if (flag === 'default') return undefined;
  if (flag !== undefined) {
    if (!existsSync(flag) || !statSync(flag).isFile()) throw new AudioError(`${flagName} ${flag}: no such file (an ARPA language model, or "default")`);
    return flag;
  }
  const shipped = modelDir ? join(modelDir, MODEL_SPEECH_LM) : undefined;
  return shipped && existsSync(shipped) ? shipped : undefined;
}
