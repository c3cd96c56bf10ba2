import type { CausalLM, ForwardRow } from '../../src/llm/runtime/causal-lm.ts';
import type { CacheBlock } from '../../src/llm/runtime/kv-cache.ts';

/** One token ever fed to the model: what it was, where its row placed it, and what it saw there. */
export interface FedToken {
  token: number;
  position: number;
  sees: [number, number][];
}

/**
 * Wraps `lm.forward` to log every token the model is fed, with exactly the context (tokens and
 * their positions in that row's view) it attended to. From this log an independent reference can
 * recompute every K/V from token ids: the from-scratch oracle for shared-cache generation.
 */
export class ForwardRecorder {
  readonly fed: FedToken[] = [];
  /** Global ids of the tokens each block holds, kept in step with trims. */
  private blockIds = new Map<CacheBlock, number[]>();
  /** For each call: per row, the global ids of its new tokens. */
  readonly calls: { rows: ForwardRow[]; newIds: number[][]; sequences: number[][] }[] = [];

  constructor(lm: CausalLM) {
    const original = lm.forward.bind(lm);
    lm.forward = async (rows: ForwardRow[]) => {
      const newIds = rows.map((row) => this.plan(row));
      // Each row's token sequence as that row saw it: its view at call time, then its new tokens.
      const sequences = rows.map((row) => [...row.view.flatMap((b) => b.tokens), ...row.tokens]);
      const out = await original(rows);
      rows.forEach((row, r) => {
        if (row.persist === false) return;
        this.ids(row.view[row.view.length - 1]).push(...newIds[r]);
      });
      this.calls.push({ rows, newIds, sequences });
      return out;
    };
  }

  private ids(b: CacheBlock): number[] {
    let ids = this.blockIds.get(b);
    if (!ids) this.blockIds.set(b, (ids = []));
    if (ids.length > b.length) ids.length = b.length; // the block was trimmed
    return ids;
  }

  private plan(row: ForwardRow): number[] {
    const seen: [number, number][] = [];
    let pos = 0;
    for (const b of row.view) {
      for (const g of this.ids(b)) seen.push([g, pos++]);
    }
    const out: number[] = [];
    row.tokens.forEach((token, i) => {
      const id = this.fed.length;
      const own: [number, number][] = out.map((g, j) => [g, pos + j]);
      this.fed.push({ token, position: pos + i, sees: [...seen, ...own, [id, pos + i]] });
      out.push(id);
    });
    return out;
  }

  /** Global id of the last new token of the most recent call's row whose view ends with `target`. */
  lastQueryInto(target: CacheBlock): number {
    const call = this.calls[this.calls.length - 1];
    const r = call.rows.findIndex((row) => row.view[row.view.length - 1] === target);
    if (r < 0) throw new Error(`no row wrote into ${target.name} in the last call`);
    return call.newIds[r][call.newIds[r].length - 1];
  }

  /** The token sequence of the most recent call's row whose view ends with `target`, as it saw it. */
  lastSequenceInto(target: CacheBlock): number[] {
    const call = this.calls[this.calls.length - 1];
    const r = call.rows.findIndex((row) => row.view[row.view.length - 1] === target);
    if (r < 0) throw new Error(`no row wrote into ${target.name} in the last call`);
    return call.sequences[r];
  }
}

/** Records each call the model makes from now on (every row's new tokens) until restore(). */
export function watchCalls(lm: CausalLM): { calls: number[][][]; restore: () => void } {
  const calls: number[][][] = [];
  const forward = lm.forward.bind(lm);
  lm.forward = (rows: ForwardRow[]) => {
    calls.push(rows.map((r) => r.tokens));
    return forward(rows);
  };
  return { calls, restore: () => (lm.forward = forward) };
}
