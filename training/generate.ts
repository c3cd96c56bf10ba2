/**
 * Writes the training data from the engine's own prompt set and layout (samples.ts):
 *   corpus OUT.txt  — the text of every segment, one line each, for training the tokenizer;
 *   tokens MODEL_DIR OUT.bin — token ids and labels, tokenised by the runtime's own Tokenizer
 *     from MODEL_DIR (so the ids are the ones the engine will feed).
 * Options: --samples N (default 60000), --seed S (default 1), --mix base|practice (default base).
 *
 * OUT.bin: for each sample, u32 length n, u32 its standing prompt (0 none, 1 the writer's, 2 the
 * thinker's: the first tokens of the sample, the same in every sample that has it, so training
 * encodes them once per batch), then n × i32 input ids, then n × i32 labels (-100: no loss).
 * OUT.bin.json: the standing prompts' ids, the counts, and the control question's last token and
 * its two answers (so training can weight the probe's one-token answer).
 */
import { openSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { promptSetFor } from '../src/async-reasoning/prompts.ts';
import { Tokenizer } from '../src/llm/model/tokenizer.ts';
import { MIXES, SampleMaker, type Sample } from './samples.ts';
import { Rand } from './task.ts';

const CHATML_TOKENS = new Set(['<|im_start|>', '<|im_end|>']);

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

/** Ids and labels of one sample: each segment encoded on its own, as the engine encodes each block. */
export function tokenize(tok: Tokenizer, s: Sample): { ids: number[]; labels: number[] } {
  const ids: number[] = [];
  const labels: number[] = [];
  for (const g of s.segments) {
    if (g.kind === 'target') {
      const t = tok.encode(g.text);
      if (t.length !== 1) throw new Error(`target "${g.text}" is ${t.length} tokens, not one`);
      labels[labels.length - 1] = t[0];
      continue;
    }
    const t = g.kind === 'user' || g.kind === 'said' ? tok.encodeText(g.text) : tok.encode(g.text);
    for (const [j, id] of t.entries()) {
      const learned = g.kind === 'gen' || g.kind === 'said' || (g.kind === 'end' && j === 0);
      if (learned && labels.length) labels[labels.length - 1] = id;
      ids.push(id);
      labels.push(-100);
    }
  }
  return { ids, labels };
}

async function main(): Promise<void> {
  const [mode, ...rest] = process.argv.slice(2);
  const n = arg('--samples', 60000);
  const seed = arg('--seed', 1);
  const P = promptSetFor((t) => CHATML_TOKENS.has(t));
  const mixName = process.argv.includes('--mix') ? process.argv[process.argv.indexOf('--mix') + 1] : 'base';
  if (!(mixName in MIXES)) throw new Error(`--mix: one of ${Object.keys(MIXES).join(', ')}`);
  const maker = new SampleMaker(P, new Rand(seed), MIXES[mixName as keyof typeof MIXES]);
  if (mode === 'corpus') {
    const lines: string[] = [];
    for (const t of Object.values(P)) if (typeof t === 'string') lines.push(...t.split('\n'));
    for (let i = 0; i < n; i++) for (const g of maker.draw('train').segments) lines.push(...g.text.split('\n'));
    writeFileSync(rest[0], lines.filter((l) => l.trim()).join('\n') + '\n');
    return;
  }
  if (mode === 'tokens') {
    const tok = await Tokenizer.fromFolder(rest[0]);
    const fd = openSync(rest[1], 'w');
    const counts = new Map<string, number>();
    let tokens = 0;
    let lossTokens = 0;
    let longest = 0;
    for (let i = 0; i < n; i++) {
      const s = maker.draw('train');
      const { ids, labels } = tokenize(tok, s);
      counts.set(s.type, (counts.get(s.type) ?? 0) + 1);
      tokens += ids.length;
      lossTokens += labels.filter((l) => l >= 0).length;
      longest = Math.max(longest, ids.length);
      const first = s.segments[0]?.text;
      const standing = first === P.writerSystem ? 1 : first === P.thinkerSystem ? 2 : 0;
      const buf = Buffer.alloc(8 + 8 * ids.length);
      buf.writeUInt32LE(ids.length, 0);
      buf.writeUInt32LE(standing, 4);
      ids.forEach((x, j) => buf.writeInt32LE(x, 8 + 4 * j));
      labels.forEach((x, j) => buf.writeInt32LE(x, 8 + 4 * (ids.length + j)));
      writeSync(fd, buf);
      if ((i + 1) % 5000 === 0) process.stderr.write(`tokens: ${i + 1}/${n} samples\n`);
    }
    closeSync(fd);
    const one = (t: string) => {
      const ids = tok.encode(t);
      if (ids.length !== 1) throw new Error(`"${t}" is ${ids.length} tokens, not one`);
      return ids[0];
    };
    const probe = { after: tok.encode(P.controlQuestion).at(-1), yes: one(' yes'), no: one(' no') };
    const summary = { samples: n, seed, mix: mixName, probe, tokens, lossTokens, meanLength: tokens / n, longest, types: Object.fromEntries(counts), standing: { 1: tok.encode(P.writerSystem), 2: tok.encode(P.thinkerSystem) } };
    writeFileSync(`${rest[1]}.json`, JSON.stringify(summary));
    console.log(JSON.stringify({ ...summary, standing: undefined }));
    return;
  }
  throw new Error('usage: generate.ts corpus OUT.txt | tokens MODEL_DIR OUT.bin [--samples N] [--seed S]');
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
