import { beforeEach, describe, expect, it, vi } from 'vitest';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

// The Electron binary cannot run here: the main process is tested against a recorded mock.
const h = vi.hoisted(() => {
  const state = {
    windows: [] as { options: any; handlers: Record<string, Function>; openHandler?: Function; loaded?: string; sent: unknown[][] }[],
    ipc: new Map<string, Function>(),
    shortcuts: new Map<string, Function>(),
  };
  class BrowserWindow {
    webContents: any;
    constructor(options: any) {
      const rec = { options, handlers: {} as Record<string, Function>, openHandler: undefined as Function | undefined, loaded: undefined as string | undefined, sent: [] as unknown[][] };
      state.windows.push(rec);
      this.webContents = {
        on: (ev: string, fn: Function) => (rec.handlers[ev] = fn),
        setWindowOpenHandler: (fn: Function) => (rec.openHandler = fn),
        send: (...args: unknown[]) => rec.sent.push(args),
      };
      (this as any).loadURL = (u: string) => (rec.loaded = u);
    }
    static getAllWindows() {
      return [];
    }
  }
  return {
    state,
    electron: {
      BrowserWindow,
      app: { whenReady: async () => undefined, on: () => undefined, getVersion: () => '0.1.0' },
      ipcMain: { handle: (ch: string, fn: Function) => state.ipc.set(ch, fn) },
      globalShortcut: { register: (acc: string, fn: Function) => (state.shortcuts.set(acc, fn), true), unregisterAll: () => undefined },
      session: { defaultSession: {} },
    },
  };
});
vi.mock('electron', () => ({ ...h.electron, default: h.electron }));

const main = await import('../../electron/main.mjs');
const contract = await import('../../electron/ipc-contract.mjs');
const CORE = 'http://127.0.0.1:4567/';

beforeEach(() => {
  h.state.windows.length = 0;
  h.state.ipc.clear();
  h.state.shortcuts.clear();
});

describe('Electron main process', () => {
  it('creates a locked-down window on the core URL', () => {
    main.createMainWindow(CORE);
    const w = h.state.windows[0];
    expect(w.options.webPreferences).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, nodeIntegrationInWorker: false, webSecurity: true });
    expect(w.options.webPreferences.preload).toMatch(/electron[\\/]preload\.cjs$/);
    expect(w.loaded).toBe(CORE);
    const nav = (url: string) => {
      const ev = { prevented: false, preventDefault() { this.prevented = true; } };
      w.handlers['will-navigate'](ev, url);
      return ev.prevented;
    };
    expect(nav('https://evil.example/')).toBe(true);
    expect(nav('http://127.0.0.1:4567/other')).toBe(false);
    expect(w.openHandler!({ url: 'https://evil.example' })).toEqual({ action: 'deny' });
  });

  it('grants the microphone to the core origin only, and nothing else', () => {
    let request!: Function;
    let check!: Function;
    main.installPermissions({ setPermissionRequestHandler: (f: Function) => (request = f), setPermissionCheckHandler: (f: Function) => (check = f) }, CORE);
    const ask = (url: string, perm: string) => {
      let answer: boolean | undefined;
      request({ getURL: () => url }, perm, (a: boolean) => (answer = a));
      return answer;
    };
    expect(ask('http://127.0.0.1:4567/', 'media')).toBe(true);
    expect(ask('http://127.0.0.1:9999/', 'media')).toBe(false);
    expect(ask('http://127.0.0.1:4567/', 'geolocation')).toBe(false);
    expect(check(null, 'media', 'http://127.0.0.1:4567')).toBe(true);
    expect(check(null, 'media', 'https://evil.example')).toBe(false);
  });

  it('answers IPC only from the renderer it serves', () => {
    main.registerIpc(CORE, '0.1.0');
    const handler = h.state.ipc.get(contract.GET_INFO)!;
    expect(handler({ senderFrame: { url: 'http://127.0.0.1:4567/index.html' } })).toMatchObject({ coreUrl: 'http://127.0.0.1:4567', version: '0.1.0' });
    expect(() => handler({ senderFrame: { url: 'https://evil.example/' } })).toThrow(/refused/);
    expect(() => handler({ senderFrame: null })).toThrow(/refused/);
  });

  it('registers the global push-to-talk shortcut, toggling down and up', () => {
    const win = { webContents: { send: vi.fn() } };
    expect(main.registerShortcut(() => win)).toBe(true);
    const fire = h.state.shortcuts.get(contract.PTT_ACCELERATOR)!;
    fire();
    fire();
    expect(win.webContents.send.mock.calls).toEqual([
      [contract.PUSH_TO_TALK, true],
      [contract.PUSH_TO_TALK, false],
    ]);
  });

  it('starts the core service on a free loopback port and reads its URL', async () => {
    const fake = Object.assign(new EventEmitter(), { stdout: new EventEmitter() });
    const spawnFn = vi.fn(() => fake);
    const started = main.startCore({ model: 'models/x', spawnFn: spawnFn as never });
    fake.stdout.emit('data', 'building graph…\nasyncvoice core service: http://127.0.0.1:5555/\n');
    await expect(started).resolves.toMatchObject({ url: 'http://127.0.0.1:5555/' });
    const [cmd, args, options] = spawnFn.mock.calls[0] as unknown as [string, string[], { env: Record<string, string> }];
    expect(cmd).toBe(process.execPath); // Electron's own Node in the app
    expect(options.env.ELECTRON_RUN_AS_NODE).toBe('1');
    expect(args.slice(1)).toEqual(['serve', '--port', '0', '--model', 'models/x']);
  });

  it('with no model named, starts the core service on the model that ships (serve\'s default)', async () => {
    const fake = Object.assign(new EventEmitter(), { stdout: new EventEmitter() });
    const spawnFn = vi.fn(() => fake);
    const saved = process.env.ASYNCVOICE_MODEL;
    delete process.env.ASYNCVOICE_MODEL;
    try {
      const started = main.startCore({ spawnFn: spawnFn as never });
      fake.stdout.emit('data', 'asyncvoice core service: http://127.0.0.1:5556/\n');
      await expect(started).resolves.toMatchObject({ url: 'http://127.0.0.1:5556/' });
    } finally {
      if (saved !== undefined) process.env.ASYNCVOICE_MODEL = saved;
    }
    const args = (spawnFn.mock.calls[0] as unknown as [string, string[]])[1];
    expect(args.slice(1)).toEqual(['serve', '--port', '0']);
  });
});

describe('preload bridge', () => {
  it('exposes only onPushToTalk and getInfo, on the contract channels', () => {
    const exposed: Record<string, any> = {};
    const listeners = new Map<string, Function>();
    const fakeElectron = {
      contextBridge: { exposeInMainWorld: (key: string, api: unknown) => (exposed[key] = api) },
      ipcRenderer: { on: (ch: string, f: Function) => listeners.set(ch, f), removeListener: (ch: string) => listeners.delete(ch), invoke: vi.fn(async (ch: string) => ch) },
    };
    const src = readFileSync(resolve(__dirname, '../../electron/preload.cjs'), 'utf8');
    const module = { exports: {} as Record<string, string> };
    new Function('require', 'module', src)((m: string) => {
      if (m !== 'electron') throw new Error(`a sandboxed preload cannot require ${m}`);
      return fakeElectron;
    }, module);
    expect(module.exports).toEqual({ PUSH_TO_TALK: contract.PUSH_TO_TALK, GET_INFO: contract.GET_INFO });
    expect(Object.keys(exposed)).toEqual(['asyncvoice']);
    expect(Object.keys(exposed.asyncvoice).sort()).toEqual(['getInfo', 'onPushToTalk']);
    const got: boolean[] = [];
    const off = exposed.asyncvoice.onPushToTalk((d: boolean) => got.push(d));
    listeners.get(contract.PUSH_TO_TALK)!({}, true);
    listeners.get(contract.PUSH_TO_TALK)!({}, 'yes'); // only a real true counts as down
    expect(got).toEqual([true, false]);
    off();
    expect(listeners.has(contract.PUSH_TO_TALK)).toBe(false);
    expect(() => exposed.asyncvoice.onPushToTalk('not a function')).toThrow(TypeError);
  });
});

describe('electron-builder.yml', () => {
  it("validates against electron-builder's own schema and targets AppImage/deb, nsis and dmg", async () => {
    const { parse } = await import('yaml');
    const config = parse(readFileSync(resolve(__dirname, '../../electron-builder.yml'), 'utf8'));
    const { validateConfiguration } = await import('app-builder-lib/out/util/config/config.js');
    await expect(validateConfiguration(config, { isEnabled: false, add: () => undefined })).resolves.toBeUndefined();
    expect(config.linux.target).toEqual(['AppImage', 'deb']);
    expect(config.win.target).toEqual(['nsis']);
    expect(config.mac.target).toEqual(['dmg']);
    // A wrong key is caught, so the check is real.
    await expect(validateConfiguration({ ...config, linux: { ...config.linux, tragets: [] } }, { isEnabled: false, add: () => undefined })).rejects.toThrow(/Invalid configuration object/);
  });
});

describe('npm start', () => {
  it("without Electron's binary says how to get it and how to use the browser instead", async () => {
    const { spawnSync } = await import('node:child_process');
    // Where a downloaded binary would be, point at nothing (electron's own override): the same
    // situation whether this checkout has the binary or not.
    const env = { ...process.env, ELECTRON_OVERRIDE_DIST_PATH: resolve(__dirname, 'no-electron-here') };
    const r = spawnSync('npm', ['start', '--silent'], { cwd: resolve(__dirname, '../..'), encoding: 'utf8', env });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("Electron's binary is not installed");
    expect(r.stderr).toContain('node node_modules/electron/install.js');
    expect(r.stderr).toMatch(/npx asyncvoice serve\n/);
    expect(r.stderr).not.toMatch(/delete node_modules\/electron/);
  }, 30_000);
});

