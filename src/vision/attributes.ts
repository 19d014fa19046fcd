/** Age and gender heads: SSR-Net (fr_age / fr_gender) stage merge and InsightFace genderage decoding. */
import type { Gender } from './types.js';

/** The nine SSR-Net outputs in this order; every value read from the model, flattened. */
export const SSRNET_OUTPUTS = [
  'prob_stage_1',
  'prob_stage_2',
  'prob_stage_3',
  'stage1_delta_k',
  'stage2_delta_k',
  'stage3_delta_k',
  'index_offset_stage1',
  'index_offset_stage2',
  'index_offset_stage3',
] as const;

/**
 * SSR-Net soft stagewise regression: x = [p1(3), p2(3), p3(3), dk1, dk2, dk3, eta1(3), eta2(3), eta3(3)],
 * y = V * sum_k sum_i (i + lambda_local * eta_k[i]) * p_k[i] / prod_{j<=k} (s_j * (1 + lambda_d * dk_j)).
 */
export function ssrNetMerge(x: ArrayLike<number>, V: number, stages: [number, number, number] = [3, 3, 3], lambdaLocal = 1, lambdaD = 1): number {
  let total = 0;
  let denominator = 1;
  let probOffset = 0;
  let etaOffset = 12;
  for (let k = 0; k < 3; k++) {
    const s = stages[k];
    denominator *= s * (1 + lambdaD * x[9 + k]);
    let sum = 0;
    for (let i = 0; i < s; i++) sum += (i + lambdaLocal * x[etaOffset + i]) * x[probOffset + i];
    total += sum / denominator;
    probOffset += s;
    etaOffset += s;
  }
  return total * V;
}

/** SSR-Net gender regresses 0 (female) .. 1 (male); confidence grows with the distance from 0.5. */
export function genderFromSsr(value: number): { gender: Gender; confidence: number } {
  const v = Math.max(0, Math.min(1, value));
  return v >= 0.5 ? { gender: 'male', confidence: v } : { gender: 'female', confidence: 1 - v };
}

/** InsightFace genderage `fc1` = [female logit, male logit, age / 100]. */
export function decodeGenderAge(fc1: ArrayLike<number>): { age: number; gender: Gender; confidence: number } {
  const f = fc1[0];
  const m = fc1[1];
  const mx = Math.max(f, m);
  const pm = Math.exp(m - mx) / (Math.exp(m - mx) + Math.exp(f - mx));
  const gender: Gender = pm >= 0.5 ? 'male' : 'female';
  return { age: Math.max(0, fc1[2] * 100), gender, confidence: gender === 'male' ? pm : 1 - pm };
}
