// Sandboxed preload: the renderer gets a tiny, typed API and nothing of Node or Electron.
const { contextBridge, ipcRenderer } = require('electron');

// Must match ipc-contract.mjs (a sandboxed preload cannot import it; a test compares them).
const PUSH_TO_TALK = 'asyncvoice:push-to-talk';
const GET_INFO = 'asyncvoice:get-info';

contextBridge.exposeInMainWorld('asyncvoice', {
  /** cb(down: boolean) on the global push-to-talk shortcut. Returns an unsubscribe function. */
  onPushToTalk(cb) {
    if (typeof cb !== 'function') throw new TypeError('onPushToTalk needs a function');
    const listener = (_event, down) => cb(down === true);
    ipcRenderer.on(PUSH_TO_TALK, listener);
    return () => ipcRenderer.removeListener(PUSH_TO_TALK, listener);
  },
  getInfo: () => ipcRenderer.invoke(GET_INFO),
});

module.exports = { PUSH_TO_TALK, GET_INFO };
