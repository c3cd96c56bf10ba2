import { Command, CommanderError } from 'commander';
import { AsyncVoiceError } from '../errors.ts';
import { registerCommands } from './commands.ts';

/** Exit codes: bad input (a flag, a file, a value) is 2; a failure that may pass if retried is 75. */
export const EXIT_BAD_INPUT = 2;
export const EXIT_RETRYABLE = 75;

// A closed pipe (`asyncvoice … | head`) is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const debug = process.argv.includes('--debug');
const program = new Command('asyncvoice')
  .description('A voice assistant that thinks while it listens and keeps thinking while it speaks.')
  .option('--debug', 'show stack traces of failures')
  // One line for a bad flag, and where the options are listed: not the whole help after it.
  .showHelpAfterError("(add --help to the command for its options)")
  // Commander's own errors (unknown flag, bad value) come back here so they exit 2, not 1.
  .exitOverride();
registerCommands(program);

/** Operating-system errors a user causes with a path or an address: their input, said in one line. */
const INPUT_ERRNO = new Set(['ENOENT', 'EISDIR', 'ENOTDIR', 'EACCES', 'EPERM', 'EEXIST', 'ENAMETOOLONG', 'EROFS']);

function fail(e: unknown): never {
  if (e instanceof CommanderError) {
    // Help and version are not failures; commander has already printed its message.
    process.exit(e.exitCode === 0 ? 0 : EXIT_BAD_INPUT);
  }
  if (debug && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  if (e instanceof AsyncVoiceError) {
    process.stderr.write(`asyncvoice: ${e.message}\n`);
    process.exit(e.retryable ? EXIT_RETRYABLE : EXIT_BAD_INPUT);
  }
  const err = e as NodeJS.ErrnoException;
  if (err?.code && INPUT_ERRNO.has(err.code)) {
    // Node's own message names the path; say it when it does not.
    const msg = err.message ?? err.code;
    process.stderr.write(`asyncvoice: ${err.path && !msg.includes(err.path) ? `${msg} (${err.path})` : msg}\n`);
    process.exit(EXIT_BAD_INPUT);
  }
  process.stderr.write(`asyncvoice: ${err?.message ?? String(e)}${debug ? '' : ' (run with --debug for details)'}\n`);
  process.exit(1);
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  fail(e);
}
