import { describe, expect, it } from 'vitest';
import { Sampler, argmax, logProb } from '../../src/llm/runtime/sampling.ts';

const logits = Float32Array.from([1, 3, 2, 0.5, 2.9]);

describe('Sampler', () => {
  it('is greedy by default and honours forbidden tokens', () => {
    expect(new Sampler().sample(logits)).toBe(1);
    expect(new Sampler().sample(logits, [], new Set([1]))).toBe(4);
    expect(() => new Sampler().sample(logits, [], new Set([0, 1, 2, 3, 4]))).toThrow(/forbidden/);
  });

  it('repetition penalty divides positive and multiplies negative scores of seen tokens', () => {
    expect(new Sampler({ repetitionPenalty: 2 }).sample(logits, [1])).toBe(4);
    const neg = Float32Array.from([-1, -1.5]);
    expect(new Sampler({ repetitionPenalty: 2 }).sample(neg, [0])).toBe(1);
  });

  it('is reproducible for a seed and follows the distribution', () => {
    const a = new Sampler({ temperature: 1, seed: 3 });
    const b = new Sampler({ temperature: 1, seed: 3 });
    const draws = Array.from({ length: 4000 }, () => a.sample(logits));
    expect(Array.from({ length: 4000 }, () => b.sample(logits))).toEqual(draws);
    const p = Array.from(logits, (x) => Math.exp(x));
    const z = p.reduce((s, x) => s + x, 0);
    for (let i = 0; i < logits.length; i++) {
      const freq = draws.filter((d) => d === i).length / draws.length;
      expect(Math.abs(freq - p[i] / z)).toBeLessThan(0.03);
    }
  });

  it('top-k and top-p cut the candidates', () => {
    const k = new Sampler({ temperature: 1, topK: 2, seed: 1 });
    expect(new Set(Array.from({ length: 500 }, () => k.sample(logits)))).toEqual(new Set([1, 4]));
    const p = new Sampler({ temperature: 1, topP: 0.3, seed: 1 });
    expect(new Set(Array.from({ length: 500 }, () => p.sample(logits)))).toEqual(new Set([1]));
    const never = new Sampler({ temperature: 0.7, topK: 3, seed: 2 });
    for (let i = 0; i < 300; i++) expect(never.sample(logits, [], new Set([1]))).not.toBe(1);
  });

  it('log-probabilities are normalised', () => {
    const total = [0, 1, 2, 3, 4].reduce((s, i) => s + Math.exp(logProb(logits, i)), 0);
    expect(total).toBeCloseTo(1, 10);
    expect(argmax(logits)).toBe(1);
  });
});
