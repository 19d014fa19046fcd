/** Verification and identification metrics over cosine scores (used by `npm run eval`; pure). */

/** ROC AUC by the Mann-Whitney statistic (ties count half). */
export function rocAuc(genuine: number[], impostor: number[]): number {
  if (genuine.length === 0 || impostor.length === 0) return NaN;
  const all = [...genuine.map((s) => ({ s, g: 1 })), ...impostor.map((s) => ({ s, g: 0 }))].sort((a, b) => a.s - b.s);
  let rankSumGenuine = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j + 1 < all.length && all[j + 1].s === all[i].s) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (all[k].g) rankSumGenuine += avgRank;
    i = j + 1;
  }
  const nG = genuine.length;
  const nI = impostor.length;
  return (rankSumGenuine - (nG * (nG + 1)) / 2) / (nG * nI);
}

/**
 * Smallest threshold t (score >= t accepts) whose impostor accept rate is <= far: the midpoint just above
 * the (floor(far * n) + 1)-th highest impostor score.
 */
export function thresholdAtFar(impostor: number[], far: number): number {
  if (impostor.length === 0) return NaN;
  const sorted = [...impostor].sort((a, b) => b - a);
  const allowed = Math.floor(far * sorted.length);
  if (allowed >= sorted.length) return -Infinity;
  return nextUp(sorted[allowed]);
}

function nextUp(x: number): number {
  return x + Math.max(1e-9, Math.abs(x) * 1e-9);
}

export function acceptRate(scores: number[], threshold: number): number {
  if (scores.length === 0) return NaN;
  let n = 0;
  for (const s of scores) if (s >= threshold) n++;
  return n / scores.length;
}

export type Probe = { identity: string; scores: Map<string, number> };

/** Best gallery identity and its score for each probe. */
export function bestMatch(scores: Map<string, number>): { identity: string | null; score: number } {
  let identity: string | null = null;
  let score = -Infinity;
  for (const [id, s] of scores) {
    if (s > score) {
      score = s;
      identity = id;
    }
  }
  return { identity, score };
}
