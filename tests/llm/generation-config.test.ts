import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { QWEN3_NON_THINKING, QWEN3_THINKING, advisedSampling } from '../../src/llm/runtime/generation-config.ts';
import { streamSampling, type EngineCliOptions } from '../../src/cli/engine-options.ts';
import { scratchDir } from '../helpers/models.ts';

const root = scratchDir();
afterAll(() => rmSync(root, { recursive: true, force: true }));

function folder(name: string, config?: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  if (config !== undefined) writeFileSync(join(dir, 'generation_config.json'), config);
  return dir;
}

const flags = (o: Partial<EngineCliOptions> = {}) => ({ greedy: false, seed: 3, ...o }) as EngineCliOptions;

describe("a model folder's advised sampling", () => {
  it('reads do_sample, temperature, top_k and top_p; none or a broken file is no advice', () => {
    expect(advisedSampling(folder('qwen', '{"do_sample": true, "temperature": 0.6, "top_k": 20, "top_p": 0.95}'))).toEqual({ temperature: 0.6, topK: 20, topP: 0.95 });
    expect(advisedSampling(folder('greedy', '{"do_sample": false, "temperature": 0.6}'))).toEqual({ temperature: 0 });
    expect(advisedSampling(folder('none'))).toBeNull();
    expect(advisedSampling(folder('broken', '{not json'))).toBeNull();
    expect(advisedSampling(folder('silent', '{"eos_token_id": 2}'))).toBeNull();
  });

  it('the thinker samples as advised, the writer with the non-thinking settings; flags override; --greedy is greedy', () => {
    const qwen = folder('qwen2', '{"do_sample": true, "temperature": 0.6, "top_k": 20, "top_p": 0.95}');
    expect(streamSampling(flags(), qwen)).toEqual({ thinker: { temperature: 0.6, topK: 20, topP: 0.95, seed: 3 }, writer: { ...QWEN3_NON_THINKING, seed: 3 } });
    // No folder to read (a Hub id before download): the family's published thinking settings.
    expect(streamSampling(flags()).thinker).toEqual({ ...QWEN3_THINKING, seed: 3 });
    // A folder that advises greedy (the shipped model) is greedy in both streams.
    expect(streamSampling(flags(), folder('g2', '{"do_sample": false}'))).toEqual({ thinker: { temperature: 0, seed: 3 }, writer: { temperature: 0, seed: 3 } });
    const o = streamSampling(flags({ temperature: 0.9, writerTemperature: 0.2, topK: 5 }), qwen);
    expect(o.thinker).toMatchObject({ temperature: 0.9, topK: 5, topP: 0.95 });
    expect(o.writer).toMatchObject({ temperature: 0.2, topK: 5, topP: 0.8 });
    expect(streamSampling(flags({ greedy: true, temperature: 1 }), qwen)).toEqual({ thinker: { temperature: 0 }, writer: { temperature: 0 } });
  });
});
