// Electron main process: starts (or attaches to) the core service and shows the renderer it
// serves, locked down: context isolation, sandbox, no Node in the page, CSP from the core,
// navigation and new windows refused, the microphone allowed for the core's origin only.
import { app, BrowserWindow, globalShortcut, ipcMain, session } from 'electron';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GET_INFO, PTT_ACCELERATOR, PUSH_TO_TALK } from './ipc-contract.mjs';

const here = dirname(fileURLToPath(import.meta.url));

export const WEB_PREFERENCES = Object.freeze({
  contextIsolation: true,
  sandbox: true,
  nodeIntegration: false,
  nodeIntegrationInWorker: false,
  webSecurity: true,
  allowRunningInsecureContent: false,
  spellcheck: false,
});

/**
 * Starts `asyncvoice serve` on a free loopback port and resolves with its URL (token included).
 * It runs on Electron's own Node (ELECTRON_RUN_AS_NODE), so a packaged app needs no Node install;
 * onnxruntime-node is an N-API addon and loads there as it does in Node.
 */
export function startCore({ model = process.env.ASYNCVOICE_MODEL, spawnFn = spawn } = {}) {
  // No model named: the one that ships inside asyncvoice (serve's default).
  const args = [join(here, '..', 'bin', 'asyncvoice.mjs'), 'serve', '--port', '0', ...(model ? ['--model', model] : [])];
  const child = spawnFn(process.env.ASYNCVOICE_NODE ?? process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/core service: (\S+)/);
      if (m) resolve({ url: m[1], child });
    });
    child.on('exit', (code) => reject(new Error(`the core service exited (${code}); ${model ? `is the model at ${model}?` : 'see its message above'}`)));
  });
}

export function originOf(url) {
  return new URL(url).origin;
}

/** The window, with every guard in place. */
export function createMainWindow(coreUrl) {
  const origin = originOf(coreUrl);
  const win = new BrowserWindow({
    width: 1280,
    height: 820,
    title: 'asyncvoice',
    webPreferences: { ...WEB_PREFERENCES, preload: join(here, 'preload.cjs') },
  });
  win.webContents.on('will-navigate', (event, url) => {
    if (originOf(url) !== origin) event.preventDefault();
  });
  win.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  win.loadURL(coreUrl);
  return win;
}

/** Only the core's own page may use the microphone (and nothing else needs a permission). */
export function installPermissions(ses, coreUrl) {
  const origin = originOf(coreUrl);
  const allowed = (url, permission) => permission === 'media' && typeof url === 'string' && url.length > 0 && originOf(url) === origin;
  ses.setPermissionRequestHandler((wc, permission, callback) => callback(allowed(wc.getURL(), permission)));
  ses.setPermissionCheckHandler((_wc, permission, requestingOrigin) => allowed(requestingOrigin, permission));
}

/** IPC handlers answer only frames from the core's origin. */
export function registerIpc(coreUrl, version) {
  const origin = originOf(coreUrl);
  ipcMain.handle(GET_INFO, (event) => {
    const from = event.senderFrame?.url;
    if (!from || originOf(from) !== origin) throw new Error('refused: sender is not the asyncvoice renderer');
    return { coreUrl: origin, version, platform: process.platform };
  });
}

/** Global push-to-talk: press to talk, press again to stop. */
export function registerShortcut(getWindow) {
  let down = false;
  return globalShortcut.register(PTT_ACCELERATOR, () => {
    down = !down;
    getWindow()?.webContents.send(PUSH_TO_TALK, down);
  });
}

export async function main() {
  await app.whenReady();
  const core = process.env.ASYNCVOICE_CORE_URL ? { url: process.env.ASYNCVOICE_CORE_URL, child: null } : await startCore();
  installPermissions(session.defaultSession, core.url);
  registerIpc(core.url, app.getVersion());
  let win = createMainWindow(core.url);
  registerShortcut(() => win);
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) win = createMainWindow(core.url);
  });
  app.on('window-all-closed', () => app.quit());
  app.on('will-quit', () => {
    globalShortcut.unregisterAll();
    core.child?.kill();
  });
}

if (process.versions.electron && !process.env.ASYNCVOICE_NO_AUTOSTART) main();
