import { Command, InvalidArgumentError } from 'commander';
import { AsyncVoiceError } from '../errors.ts';
import { registerAsk } from './ask.ts';
import { registerGenerate } from './generate.ts';
import { registerModel } from './model.ts';
import { registerServe } from './serve.ts';
import { registerSpeech } from './speech.ts';

export function intArg(name: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

export function floatArg(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
    return n;
  };
}

// A closed pipe (`asyncvoice … | head`) is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command('asyncvoice')
  .description('A voice assistant that thinks while it listens and keeps thinking while it speaks.')
  .showHelpAfterError();
registerGenerate(program);
registerModel(program);
registerAsk(program);
registerSpeech(program);
registerServe(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof AsyncVoiceError) {
    process.stderr.write(`asyncvoice: ${e.message}\n`);
    process.exit(e.retryable ? 75 : 2);
  }
  throw e;
}
