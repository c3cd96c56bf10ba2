#!/usr/bin/env node
// `npm start`: the desktop app in Electron. The README's install skips Electron's binary
// (ELECTRON_SKIP_BINARY_DOWNLOAD=1); without it, say how to get it and how to use the browser instead.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

let binary = null;
try {
  binary = require('electron'); // the binary's path; throws when it was never downloaded
} catch {
  binary = null;
}
if (!binary || !existsSync(binary)) {
  process.stderr.write(
    [
      "Electron's binary is not installed (the install skipped it, as ELECTRON_SKIP_BINARY_DOWNLOAD=1 does).",
      'To get it (about 100 MB, needs the network):',
      '  env -u ELECTRON_SKIP_BINARY_DOWNLOAD node node_modules/electron/install.js',
      'then run `npm start` again. Or use the same app in a browser, with no download:',
      '  npx asyncvoice serve',
      'and open the URL it prints.',
      '',
    ].join('\n'),
  );
  process.exit(1);
}
const child = spawn(binary, [root, ...process.argv.slice(2)], { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 0)));
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => child.kill(s));
