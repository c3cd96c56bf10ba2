import { afterAll, beforeAll } from 'vitest';
import { rmSync } from 'node:fs';
import { io as connect, type Socket } from 'socket.io-client';
import { PocketsphinxRecognizer } from '../../src/asr/pocketsphinx.ts';
import type { CausalLM } from '../../src/llm/runtime/causal-lm.ts';
import { Tokenizer } from '../../src/llm/model/tokenizer.ts';
import { serve, type RunningServer, type ServeOptions } from '../../src/server/serve.ts';
import { EspeakNgEngine } from '../../src/tts/engine.ts';
import { loadMathSpeech } from '../../src/tts/speakable.ts';
import { makeAndLoad, scratchDir } from './models.ts';
import { needTools } from './tools.ts';

/**
 * A test file's core services over one made model: `start` serves it (small budgets, espeak-ng,
 * pocketsphinx), `client` connects like the renderer does. Everything is closed after the file.
 */
export function serverFixture(prefix: string, maxPositions: number) {
  const root = scratchDir(prefix);
  const servers: RunningServer[] = [];
  const sockets: Socket[] = [];
  const f = {
    lm: undefined as unknown as CausalLM,
    tokenizer: undefined as unknown as Tokenizer,
    async start(o: Partial<ServeOptions> = {}): Promise<RunningServer> {
      const s = await serve({
        port: 0,
        lm: f.lm,
        tokenizer: f.tokenizer,
        recognizer: new PocketsphinxRecognizer(),
        tts: new EspeakNgEngine(),
        modelName: 'test',
        engine: { maxThinkingTokens: 16, maxAnswerTokens: 8 },
        ...o,
      });
      servers.push(s);
      return s;
    },
    /** A server the test made itself, closed with the others. */
    own(s: RunningServer): RunningServer {
      servers.push(s);
      return s;
    },
    client(port: number, opts: Parameters<typeof connect>[1] = {}): Socket {
      const s = connect(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, forceNew: true, ...opts });
      sockets.push(s);
      return s;
    },
  };
  beforeAll(async () => {
    await needTools('espeak-ng', 'pocketsphinx_continuous');
    const m = await makeAndLoad('gqa-tied-fp32', root, maxPositions);
    f.lm = m.lm;
    f.tokenizer = await Tokenizer.fromFolder(m.dir);
    await loadMathSpeech();
  }, 120_000);
  afterAll(async () => {
    for (const s of sockets) s.close();
    for (const s of servers) await s.close();
    await f.lm?.close();
    rmSync(root, { recursive: true, force: true });
  });
  return f;
}
