import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { needTools } from '../helpers/tools.ts';

describe('asyncvoice doctor', () => {
  it('runs each engine for real and reports what works and what to install', async () => {
    await needTools('espeak-ng', 'text2wave', 'pocketsphinx_continuous', 'chromium');
    const r = await runCli(['doctor', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const results = new Map((JSON.parse(r.stdout) as { name: string; ok: boolean; detail: string }[]).map((x) => [x.name, x]));
    // What setup-system.sh installs works here, proven by use, not by presence.
    for (const name of ['tts espeak-ng', 'tts festival', 'asr pocketsphinx', 'vad silero', 'browser', 'device cpu']) {
      expect(results.get(name)?.ok, `${name}: ${results.get(name)?.detail}`).toBe(true);
    }
    expect(results.get('asr pocketsphinx')!.detail).toMatch(/testing|one|two|three/);
    // What cannot work here says why and what to do.
    expect(results.get('asr whisper')).toMatchObject({ ok: false });
    expect(results.get('device cuda')!.detail).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12|not in this/);
  }, 120_000);
});
