import { describe, expect, it } from 'vitest';
import { parseDecoderConfig } from '../../src/llm/model/config.ts';
import { ropeFrequencies } from '../../src/llm/graph/rope.ts';
import { UnsupportedModelError } from '../../src/errors.ts';

const qwen3 = {
  model_type: 'qwen3', hidden_size: 1024, intermediate_size: 3072, num_hidden_layers: 28, num_attention_heads: 16,
  num_key_value_heads: 8, head_dim: 128, vocab_size: 151936, rms_norm_eps: 1e-6, rope_theta: 1000000,
  max_position_embeddings: 40960, tie_word_embeddings: true, hidden_act: 'silu', use_sliding_window: false, sliding_window: null,
};

describe('parseDecoderConfig', () => {
  it('reads Qwen3-0.6B', () => {
    const c = parseDecoderConfig(qwen3);
    expect(c).toMatchObject({ modelType: 'qwen3', numKvHeads: 8, headDim: 128, qkNorm: true, qkvBias: false, tieWordEmbeddings: true });
    expect(c.ropeScaling).toEqual({ type: 'default' });
  });

  it('knows each family: Qwen2 biases, Llama attention_bias, default head_dim', () => {
    const q2 = parseDecoderConfig({ ...qwen3, model_type: 'qwen2', head_dim: undefined });
    expect(q2).toMatchObject({ qkvBias: true, oBias: false, qkNorm: false, headDim: 64 });
    const ll = parseDecoderConfig({ ...qwen3, model_type: 'llama', attention_bias: true });
    expect(ll).toMatchObject({ qkvBias: true, oBias: true, qkNorm: false });
  });

  it('caps Mistral at its sliding window instead of computing it wrongly', () => {
    expect(parseDecoderConfig({ ...qwen3, model_type: 'mistral', sliding_window: 4096 }).slidingWindow).toBe(4096);
  });

  it.each([
    [{ ...qwen3, model_type: 'gpt2' }, /model_type "gpt2" is not supported/],
    [{ ...qwen3, model_type: undefined }, /model_type undefined/],
    [{ ...qwen3, hidden_act: 'gelu' }, /hidden_act/],
    [{ ...qwen3, use_sliding_window: true }, /sliding_window/],
    [{ ...qwen3, rope_scaling: { rope_type: 'dynamic', factor: 2 } }, /rope scaling "dynamic"/],
    [{ ...qwen3, rope_scaling: { rope_type: 'linear' } }, /factor/],
    [{ ...qwen3, num_key_value_heads: 5 }, /multiple/],
    [{ ...qwen3, hidden_size: 'big' }, /hidden_size/],
    [{ ...qwen3, partial_rotary_factor: 0.5 }, /partial_rotary_factor/],
    [{ ...qwen3, mlp_bias: true }, /mlp_bias/],
    [[1, 2], /not a JSON object/],
  ])('refuses %#', (cfg, msg) => {
    expect(() => parseDecoderConfig(cfg)).toThrow(UnsupportedModelError);
    expect(() => parseDecoderConfig(cfg)).toThrow(msg);
  });

  it('reads rope settings from transformers >= 4.56 rope_parameters', () => {
    const c = parseDecoderConfig({ ...qwen3, rope_theta: undefined, rope_parameters: { rope_type: 'linear', factor: 2, rope_theta: 5000 } });
    expect(c.ropeTheta).toBe(5000);
    expect(c.ropeScaling).toEqual({ type: 'linear', factor: 2 });
  });
});

describe('RoPE frequency schedules', () => {
  const D = 128;
  it('default and linear', () => {
    const d = ropeFrequencies(D, 10000, { type: 'default' });
    expect(d.invFreq[0]).toBe(1);
    expect(d.invFreq[1]).toBeCloseTo(10000 ** (-2 / D), 15);
    const l = ropeFrequencies(D, 10000, { type: 'linear', factor: 4 });
    expect(l.invFreq[5]).toBeCloseTo(d.invFreq[5] / 4, 15);
  });

  it('llama3 (Llama 3.1 settings): keeps high, divides low, blends the middle', () => {
    const base = ropeFrequencies(D, 500000, { type: 'default' }).invFreq;
    const { invFreq } = ropeFrequencies(D, 500000, { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    const wavelen = (f: number) => (2 * Math.PI) / f;
    let sawMiddle = false;
    for (let i = 0; i < D / 2; i++) {
      if (wavelen(base[i]) < 8192 / 4) expect(invFreq[i]).toBe(base[i]);
      else if (wavelen(base[i]) > 8192) expect(invFreq[i]).toBeCloseTo(base[i] / 8, 15);
      else {
        sawMiddle = true;
        expect(invFreq[i]).toBeGreaterThan(base[i] / 8);
        expect(invFreq[i]).toBeLessThan(base[i]);
      }
    }
    expect(sawMiddle).toBe(true);
  });

  it('yarn: attention factor 0.1·ln(s)+1, extrapolates high and interpolates low frequencies', () => {
    const base = ropeFrequencies(D, 1000000, { type: 'default' }).invFreq;
    const y = ropeFrequencies(D, 1000000, { type: 'yarn', factor: 4, originalMaxPositionEmbeddings: 32768, betaFast: 32, betaSlow: 1, truncate: true });
    expect(y.attentionFactor).toBeCloseTo(0.1 * Math.log(4) + 1, 12);
    expect(y.invFreq[0]).toBe(base[0]);
    expect(y.invFreq[D / 2 - 1]).toBeCloseTo(base[D / 2 - 1] / 4, 15);
  });
});
