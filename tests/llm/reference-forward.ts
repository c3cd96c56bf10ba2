/**
 * A deliberately plain, slow, pure-TypeScript forward of a Qwen3/Llama-family decoder, written
 * from the Hugging Face modeling code's definitions and sharing no maths with the ONNX builder.
 * float64 accumulation throughout; default RoPE only.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listModelTensors, readTensorF32 } from '../../src/llm/model/safetensors.ts';

export class ReferenceDecoder {
  private w = new Map<string, Float32Array>();
  private cfg: Record<string, any>;

  /**
   * `transform` may replace any weight as it is read (to model a quantised checkpoint, say);
   * `linearInput` any input of a decoder layer's linear layer (to model quantised activations).
   */
  constructor(
    dir: string,
    transform?: (name: string, data: Float32Array, shape: number[]) => Float32Array,
    private readonly linearInput?: (x: Float64Array) => Float64Array,
  ) {
    this.cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    if (this.cfg.rope_scaling) throw new Error('reference forward implements default RoPE only');
    for (const [name, info] of listModelTensors(dir)) {
      const data = readTensorF32(info);
      this.w.set(name, transform ? transform(name, data, info.shape) : data);
    }
  }

  private get(name: string): Float32Array {
    const t = this.w.get(name);
    if (!t) throw new Error(`missing ${name}`);
    return t;
  }

  /** y[out] = W[out,in] · x[in] (+ b) */
  private linear(name: string, x0: Float64Array, out: number, bias = false): Float64Array {
    const W = this.get(`${name}.weight`);
    const x = this.linearInput && name.startsWith('model.layers.') ? this.linearInput(x0) : x0;
    const n = x.length;
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += W[o * n + i] * x[i];
      y[o] = s;
    }
    if (bias) {
      const b = this.get(`${name}.bias`);
      for (let o = 0; o < out; o++) y[o] += b[o];
    }
    return y;
  }

  private rmsNorm(x: Float64Array, weight: Float32Array, off = 0, n = x.length): void {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[off + i] ** 2;
    const inv = 1 / Math.sqrt(ss / n + this.cfg.rms_norm_eps);
    for (let i = 0; i < n; i++) x[off + i] = x[off + i] * inv * weight[i];
  }

  /** HF apply_rotary_pos_emb on one head vector, in place. */
  private rope(x: Float64Array, off: number, D: number, pos: number): void {
    const half = D / 2;
    for (let i = 0; i < half; i++) {
      const freq = 1 / Math.pow(this.cfg.rope_theta, (2 * i) / D);
      const c = Math.cos(pos * freq);
      const s = Math.sin(pos * freq);
      const a = x[off + i];
      const b = x[off + i + half];
      x[off + i] = a * c - b * s;
      x[off + i + half] = b * c + a * s;
    }
  }

  /** Logits [tokens.length, V] for a causal sequence at positions 0..n-1 (or the given ones). */
  forward(tokens: number[], positions: number[] = tokens.map((_, i) => i)): Float64Array[] {
    return this.forwardLayout(
      tokens.map((token, t) => ({
        token,
        position: positions[t],
        sees: tokens.slice(0, t + 1).map((_, u) => [u, positions[u]] as [number, number]),
      })),
    );
  }

  /**
   * The general form: token t sits at `position` in its own view and attends to the listed
   * earlier tokens u (and itself), each at the position u has *in t's view*. Every K/V is
   * recomputed from token ids, in the context that token itself saw.
   */
  forwardLayout(layout: { token: number; position: number; sees: [number, number][] }[], logitsFor?: Set<number>): Float64Array[] {
    const tokens = layout.map((x) => x.token);
    const c = this.cfg;
    const H = c.hidden_size, NH = c.num_attention_heads, K = c.num_key_value_heads ?? NH;
    const D = c.head_dim ?? H / NH, I = c.intermediate_size, V = c.vocab_size, G = NH / K;
    const qkNorm = c.model_type === 'qwen3';
    const qkvBias = c.model_type === 'qwen2' || c.attention_bias === true;
    const E = this.get('model.embed_tokens.weight');
    const T = tokens.length;
    let xs: Float64Array[] = tokens.map((t) => Float64Array.from(E.subarray(t * H, (t + 1) * H)));
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}`;
      // Pre-rotation q/k (after qk-norm), rotated per query below.
      const qs: Float64Array[] = [], ks: Float64Array[] = [], vs: Float64Array[] = [];
      for (let t = 0; t < T; t++) {
        const h = Float64Array.from(xs[t]);
        this.rmsNorm(h, this.get(`${p}.input_layernorm.weight`));
        const q = this.linear(`${p}.self_attn.q_proj`, h, NH * D, qkvBias);
        const k = this.linear(`${p}.self_attn.k_proj`, h, K * D, qkvBias);
        const v = this.linear(`${p}.self_attn.v_proj`, h, K * D, qkvBias);
        for (let hh = 0; hh < NH; hh++) {
          if (qkNorm) this.rmsNorm(q, this.get(`${p}.self_attn.q_norm.weight`), hh * D, D);
          this.rope(q, hh * D, D, layout[t].position);
        }
        for (let hh = 0; hh < K; hh++) {
          if (qkNorm) this.rmsNorm(k, this.get(`${p}.self_attn.k_norm.weight`), hh * D, D);
        }
        qs.push(q); ks.push(k); vs.push(v);
      }
      const next: Float64Array[] = [];
      for (let t = 0; t < T; t++) {
        const attn = new Float64Array(NH * D);
        const sees = layout[t].sees;
        // Keys as t sees them: rotated at their position in t's view.
        const rotated = sees.map(([u, pos]) => {
          const k = Float64Array.from(ks[u]);
          for (let hh = 0; hh < K; hh++) this.rope(k, hh * D, D, pos);
          return k;
        });
        for (let hh = 0; hh < NH; hh++) {
          const kh = Math.floor(hh / G);
          const scores = new Float64Array(sees.length);
          let max = -Infinity;
          for (let j = 0; j < sees.length; j++) {
            let s = 0;
            for (let d = 0; d < D; d++) s += qs[t][hh * D + d] * rotated[j][kh * D + d];
            scores[j] = s / Math.sqrt(D);
            max = Math.max(max, scores[j]);
          }
          let sum = 0;
          for (let j = 0; j < sees.length; j++) sum += (scores[j] = Math.exp(scores[j] - max));
          for (let j = 0; j < sees.length; j++) {
            const v = vs[sees[j][0]];
            for (let d = 0; d < D; d++) attn[hh * D + d] += (scores[j] / sum) * v[kh * D + d];
          }
        }
        const o = this.linear(`${p}.self_attn.o_proj`, attn, H, c.model_type !== 'qwen2' && c.attention_bias === true);
        const x1 = xs[t].map((v, i) => v + o[i]);
        const h2 = Float64Array.from(x1);
        this.rmsNorm(h2, this.get(`${p}.post_attention_layernorm.weight`));
        const gate = this.linear(`${p}.mlp.gate_proj`, h2, I);
        const up = this.linear(`${p}.mlp.up_proj`, h2, I);
        const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
        const down = this.linear(`${p}.mlp.down_proj`, act, H);
        next.push(x1.map((v, i) => v + down[i]));
      }
      xs = next;
    }
    const head = c.tie_word_embeddings ? 'model.embed_tokens' : 'lm_head';
    return xs.map((x, t) => {
      if (logitsFor && !logitsFor.has(t)) return new Float64Array(0);
      const h = Float64Array.from(x);
      this.rmsNorm(h, this.get('model.norm.weight'));
      return this.linear(head, h, V);
    });
  }
}
