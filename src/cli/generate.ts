import { RuntimeUsageError } from '../errors.ts';
import { generate } from '../llm/runtime/generate.ts';
import { readJson } from '../llm/model/model-source.ts';
import { Tokenizer } from '../llm/model/tokenizer.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadModelWithProgress } from './load-model.ts';
import type { ModelCliOptions } from './model-options.ts';

interface GenerateCliOptions extends ModelCliOptions {
  prompt: string;
  chat: boolean;
  think: boolean;
  maxTokens: number;
  json: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed: number;
}

/** Stop ids from generation_config.json, else config.json, else the tokenizer's eos token. */
function stopTokens(dir: string, configEos: number[], tok: Tokenizer): number[] {
  const gen = join(dir, 'generation_config.json');
  if (existsSync(gen)) {
    const e = (readJson(gen) as { eos_token_id?: number | number[] }).eos_token_id;
    if (e !== undefined) return Array.isArray(e) ? e : [e];
  }
  if (configEos.length) return configEos;
  const eos = tok.eosToken && tok.tokenId(tok.eosToken);
  return eos === undefined || eos === '' ? [] : [eos];
}

/** Streams decoded text as tokens arrive, holding back an incomplete UTF-8 sequence. */
function textStreamer(tok: Tokenizer, write: (s: string) => void) {
  const ids: number[] = [];
  let printed = '';
  return (id: number) => {
    ids.push(id);
    const text = tok.decode(ids);
    if (text.endsWith('\uFFFD')) return;
    write(text.slice(printed.length));
    printed = text;
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Streams the text generated from the prompt (or prints one JSON object). */
export async function runGenerate(o: GenerateCliOptions): Promise<void> {
  const model = await loadModelWithProgress(o, o.json);
  try {
    const tok = await Tokenizer.fromFolder(model.dir);
    const text = o.chat
      ? tok.applyChatTemplate([{ role: 'user', content: o.prompt }], { addGenerationPrompt: true, enableThinking: o.think })
      : o.prompt;
    const promptIds = tok.encode(text);
    if (!promptIds.length) throw new RuntimeUsageError('the prompt encodes to no tokens; give a non-empty --prompt');
    const stream = o.json ? undefined : textStreamer(tok, (s) => process.stdout.write(s));
    const result = await generate(model.lm, promptIds, {
      maxTokens: o.maxTokens,
      stopTokens: stopTokens(model.dir, model.config.eosTokenIds, tok),
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      repetitionPenalty: o.repetitionPenalty,
      seed: o.seed,
      onToken: stream,
    });
    if (o.json) {
      process.stdout.write(
        JSON.stringify({
          promptIds,
          tokenIds: result.tokenIds,
          text: tok.decode(result.tokenIds),
          stoppedBy: result.stoppedBy,
          timings: { prefillMs: round(result.prefillMs), decodeMsPerToken: round(result.decodeMsPerToken) },
        }) + '\n',
      );
    } else {
      process.stdout.write('\n');
      process.stderr.write(
        `prefill ${promptIds.length} tokens in ${result.prefillMs.toFixed(0)} ms; decode ${result.decodeMsPerToken.toFixed(1)} ms/token\n`,
      );
    }
  } finally {
    await model.lm.close();
  }
}
