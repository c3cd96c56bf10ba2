/** Word errors (Levenshtein distance over words, case-insensitive) of a hypothesis against a reference. */
export function wordErrors(ref: string, hyp: string): { errors: number; words: number } {
  const r = ref.toLowerCase().split(/\s+/).filter(Boolean);
  const h = hyp.toLowerCase().split(/\s+/).filter(Boolean);
  // One row of the edit-distance table at a time: row i holds the distances from r[0..i).
  let prev = Array.from({ length: h.length + 1 }, (_, j) => j);
  for (let i = 1; i <= r.length; i++) {
    const cur = [i];
    for (let j = 1; j <= h.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r[i - 1] === h[j - 1] ? 0 : 1));
    prev = cur;
  }
  return { errors: prev[h.length], words: r.length };
}
