// The one IPC contract between the Electron main process and the renderer's preload bridge.
// The sandboxed preload cannot import files, so preload.cjs repeats these names; a test checks
// that they match.

/** main → renderer: the global push-to-talk shortcut went down (true) or up (false). */
export const PUSH_TO_TALK = 'asyncvoice:push-to-talk';
/** renderer → main (invoke): { coreUrl, version, platform }. */
export const GET_INFO = 'asyncvoice:get-info';

/** Global shortcut: press to start talking, press again to stop (global shortcuts have no key-up). */
export const PTT_ACCELERATOR = 'CommandOrControl+Shift+Space';
