import type { DecoderConfig, RopeScaling } from '../model/config.ts';

/**
 * Inverse frequencies [headDim/2] and the attention factor that scales cos/sin (yarn only),
 * following the definitions in Hugging Face transformers' rope utilities. Computed in float64:
 * the tables are rounded to float32 once, which is more exact than HF's float32 arithmetic.
 */
export function ropeFrequencies(
  headDim: number,
  theta: number,
  scaling: RopeScaling,
): { invFreq: Float64Array; attentionFactor: number } {
  const half = headDim / 2;
  const base = new Float64Array(half);
  for (let i = 0; i < half; i++) base[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  switch (scaling.type) {
    case 'default':
      return { invFreq: base, attentionFactor: 1 };
    case 'linear':
      return { invFreq: base.map((f) => f / scaling.factor), attentionFactor: 1 };
    case 'llama3': {
      const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldCtx } = scaling;
      const lowWavelen = oldCtx / lowFreqFactor;
      const highWavelen = oldCtx / highFreqFactor;
      const out = base.map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < highWavelen) return f;
        if (wavelen > lowWavelen) return f / factor;
        const smooth = (oldCtx / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        return (1 - smooth) * (f / factor) + smooth * f;
      });
      return { invFreq: out, attentionFactor: 1 };
    }
    case 'yarn': {
      const { factor, betaFast, betaSlow, originalMaxPositionEmbeddings: oldCtx } = scaling;
      const getMscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
      let attentionFactor = scaling.attentionFactor;
      if (attentionFactor === undefined) {
        attentionFactor =
          scaling.mscale && scaling.mscaleAllDim
            ? getMscale(factor, scaling.mscale) / getMscale(factor, scaling.mscaleAllDim)
            : getMscale(factor);
      }
      const correctionDim = (rotations: number) =>
        (headDim * Math.log(oldCtx / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
      let low = correctionDim(betaFast);
      let high = correctionDim(betaSlow);
      if (scaling.truncate) {
        low = Math.floor(low);
        high = Math.ceil(high);
      }
      low = Math.max(low, 0);
      high = Math.min(high, headDim - 1);
      if (low === high) high += 0.001;
      const out = new Float64Array(half);
      for (let i = 0; i < half; i++) {
        const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
        const extrapolation = 1 - ramp;
        const interp = base[i] / factor;
        out[i] = interp * (1 - extrapolation) + base[i] * extrapolation;
      }
      return { invFreq: out, attentionFactor };
    }
  }
}

/**
 * cos and sin tables [positions, headDim] in HF's "rotate_half" layout (both halves repeat the
 * same frequencies), already multiplied by the attention factor.
 */
export function ropeTables(cfg: DecoderConfig, positions: number): { cos: Float32Array; sin: Float32Array } {
  const { invFreq, attentionFactor } = ropeFrequencies(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling);
  const d = cfg.headDim;
  const half = d / 2;
  const cos = new Float32Array(positions * d);
  const sin = new Float32Array(positions * d);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * invFreq[i];
      const c = Math.cos(angle) * attentionFactor;
      const s = Math.sin(angle) * attentionFactor;
      cos[p * d + i] = c;
      cos[p * d + i + half] = c;
      sin[p * d + i] = s;
      sin[p * d + i + half] = s;
    }
  }
  return { cos, sin };
}
