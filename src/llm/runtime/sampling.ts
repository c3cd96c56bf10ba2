import { ModelSourceError } from '../../errors.ts';
import { Rng } from './random.ts';

export interface SamplingOptions {
  /** 0 (default) = greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** > 1 discourages tokens already in `history` (CTRL-style, as in HF). */
  repetitionPenalty?: number;
  seed?: number;
}

/**
 * Picks the next token from one row of logits. Forbidden tokens are never chosen, whatever the
 * settings; if every token is forbidden that is a usage error, not a silent pick.
 */
export class Sampler {
  private rng: Rng;
  constructor(private readonly opts: SamplingOptions = {}) {
    this.rng = new Rng(opts.seed ?? 0);
  }

  sample(logits: Float32Array, history: readonly number[] = [], forbidden?: ReadonlySet<number>): number {
    const V = logits.length;
    checkFinite(logits);
    const scores = Float32Array.from(logits);
    const penalty = this.opts.repetitionPenalty ?? 1;
    if (penalty !== 1) {
      for (const t of new Set(history)) {
        if (t >= 0 && t < V) scores[t] = scores[t] > 0 ? scores[t] / penalty : scores[t] * penalty;
      }
    }
    if (forbidden) for (const t of forbidden) if (t >= 0 && t < V) scores[t] = -Infinity;

    const temperature = this.opts.temperature ?? 0;
    if (temperature <= 0) return argmax(scores);

    // Candidates sorted by score, cut by top-k then top-p.
    let cand: number[] = [];
    for (let i = 0; i < V; i++) if (scores[i] > -Infinity) cand.push(i);
    if (!cand.length) throw new Error('every token is forbidden');
    cand.sort((a, b) => scores[b] - scores[a]);
    const k = this.opts.topK ?? 0;
    if (k > 0 && cand.length > k) cand = cand.slice(0, k);
    const max = scores[cand[0]];
    let probs = cand.map((i) => Math.exp((scores[i] - max) / temperature));
    let sum = probs.reduce((a, b) => a + b, 0);
    const p = this.opts.topP ?? 1;
    if (p < 1) {
      let acc = 0;
      let keep = 0;
      while (keep < probs.length) {
        acc += probs[keep++] / sum;
        if (acc >= p) break;
      }
      cand = cand.slice(0, keep);
      probs = probs.slice(0, keep);
      sum = probs.reduce((a, b) => a + b, 0);
    }
    let r = this.rng.next() * sum;
    for (let i = 0; i < cand.length; i++) {
      r -= probs[i];
      if (r < 0) return cand[i];
    }
    return cand[cand.length - 1];
  }
}

/**
 * Logits that are not numbers come from broken weights (NaN or ∞ in the checkpoint, or an
 * overflow); no token can be chosen from them, and the fault is the model's, not the settings'.
 */
export function checkFinite(logits: Float32Array): void {
  for (let i = 0; i < logits.length; i++) {
    if (!Number.isFinite(logits[i]) && logits[i] !== -Infinity) {
      throw new ModelSourceError(`the model produced ${Number.isNaN(logits[i]) ? 'NaN' : '∞'} logits (token ${i}): its weights hold NaN or ∞ values, or overflow; check the checkpoint`);
    }
  }
}

export function argmax(x: Float32Array): number {
  let best = -1;
  let bestV = -Infinity;
  for (let i = 0; i < x.length; i++) {
    if (x[i] > bestV) {
      bestV = x[i];
      best = i;
    }
  }
  if (best < 0) throw new Error('every token is forbidden');
  return best;
}

/** log-softmax value of one token, for probes that compare P(yes) with P(no). */
export function logProb(logits: Float32Array, token: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return logits[token] - max - Math.log(sum);
}
