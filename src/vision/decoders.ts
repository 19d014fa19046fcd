/** Raw detector outputs -> candidates in model-input pixels. One decoder per detector kind; all pure. */
import type { Candidate } from './geometry.js';

/**
 * fr_detect (faceplugin, 320x240): `boxes` are ALREADY decoded corner boxes [x1, y1, x2, y2] normalised to
 * 0..1 and `scores` are already softmaxed (column 1 = face). No prior decoding.
 */
export function decodeFrDetect(
  scores: Float32Array,
  boxes: Float32Array,
  inputWidth: number,
  inputHeight: number,
  threshold: number,
): Candidate[] {
  const n = scores.length / 2;
  const out: Candidate[] = [];
  for (let i = 0; i < n; i++) {
    const score = scores[i * 2 + 1];
    if (score < threshold) continue;
    out.push({
      x1: boxes[i * 4] * inputWidth,
      y1: boxes[i * 4 + 1] * inputHeight,
      x2: boxes[i * 4 + 2] * inputWidth,
      y2: boxes[i * 4 + 3] * inputHeight,
      score,
    });
  }
  return out;
}

export type RetinaFaceConfig = {
  steps: number[];
  minSizes: number[][];
  variances: [number, number];
};

export const RETINAFACE_MNET025: RetinaFaceConfig = {
  steps: [8, 16, 32],
  minSizes: [
    [16, 32],
    [64, 128],
    [256, 512],
  ],
  variances: [0.1, 0.2],
};

/** Prior boxes [cx, cy, w, h] normalised to the input size, in the order the network emits them. */
export function retinaFacePriors(inputWidth: number, inputHeight: number, cfg: RetinaFaceConfig = RETINAFACE_MNET025): Float32Array {
  const priors: number[] = [];
  cfg.steps.forEach((step, k) => {
    const fh = Math.ceil(inputHeight / step);
    const fw = Math.ceil(inputWidth / step);
    for (let i = 0; i < fh; i++) {
      for (let j = 0; j < fw; j++) {
        for (const size of cfg.minSizes[k]) {
          priors.push(((j + 0.5) * step) / inputWidth, ((i + 0.5) * step) / inputHeight, size / inputWidth, size / inputHeight);
        }
      }
    }
  });
  return Float32Array.from(priors);
}

/**
 * RetinaFace: `loc` [N,4] centre/size deltas, `conf` [N,2] softmaxed (column 1 = face), `landms` [N,10]
 * point deltas, against `priors` with the variances. Returns boxes and 5 points in input pixels.
 */
export function decodeRetinaFace(
  loc: Float32Array,
  conf: Float32Array,
  landms: Float32Array,
  priors: Float32Array,
  inputWidth: number,
  inputHeight: number,
  threshold: number,
  variances: [number, number] = RETINAFACE_MNET025.variances,
): Candidate[] {
  const n = priors.length / 4;
  const [v0, v1] = variances;
  const out: Candidate[] = [];
  for (let i = 0; i < n; i++) {
    const score = conf[i * 2 + 1];
    if (score < threshold) continue;
    const pcx = priors[i * 4];
    const pcy = priors[i * 4 + 1];
    const pw = priors[i * 4 + 2];
    const ph = priors[i * 4 + 3];
    const cx = pcx + loc[i * 4] * v0 * pw;
    const cy = pcy + loc[i * 4 + 1] * v0 * ph;
    const w = pw * Math.exp(loc[i * 4 + 2] * v1);
    const h = ph * Math.exp(loc[i * 4 + 3] * v1);
    const points: number[] = [];
    for (let k = 0; k < 5; k++) {
      points.push((pcx + landms[i * 10 + k * 2] * v0 * pw) * inputWidth, (pcy + landms[i * 10 + k * 2 + 1] * v0 * ph) * inputHeight);
    }
    out.push({
      x1: (cx - w / 2) * inputWidth,
      y1: (cy - h / 2) * inputHeight,
      x2: (cx + w / 2) * inputWidth,
      y2: (cy + h / 2) * inputHeight,
      score,
      points,
    });
  }
  return out;
}

/** One SCRFD/YuNet stride level: per-anchor score [N], distances [N,4] and keypoints [N,10] (may be absent). */
export type StrideOutputs = { stride: number; scores: Float32Array; bbox: Float32Array; kps?: Float32Array };

/**
 * SCRFD (anchor-free, `anchorsPerCell` anchors per cell): anchor centre (x * stride, y * stride), row-major;
 * bbox = distances (left, top, right, bottom) in stride units; kps = offsets in stride units. Scores are
 * already sigmoids.
 */
export function decodeScrfd(
  levels: StrideOutputs[],
  inputWidth: number,
  inputHeight: number,
  threshold: number,
  anchorsPerCell = 2,
): Candidate[] {
  const out: Candidate[] = [];
  for (const { stride, scores, bbox, kps } of levels) {
    const fw = Math.ceil(inputWidth / stride);
    const fh = Math.ceil(inputHeight / stride);
    const n = Math.min(scores.length, fw * fh * anchorsPerCell);
    for (let i = 0; i < n; i++) {
      const score = scores[i];
      if (score < threshold) continue;
      const cell = Math.floor(i / anchorsPerCell);
      const cx = (cell % fw) * stride;
      const cy = Math.floor(cell / fw) * stride;
      const c: Candidate = {
        x1: cx - bbox[i * 4] * stride,
        y1: cy - bbox[i * 4 + 1] * stride,
        x2: cx + bbox[i * 4 + 2] * stride,
        y2: cy + bbox[i * 4 + 3] * stride,
        score,
      };
      if (kps) {
        c.points = [];
        for (let k = 0; k < 5; k++) c.points.push(cx + kps[i * 10 + k * 2] * stride, cy + kps[i * 10 + k * 2 + 1] * stride);
      }
      out.push(c);
    }
  }
  return out;
}

/**
 * YuNet (opencv_zoo, 2023+ heads): one anchor per cell, score = sqrt(cls * obj) (both already sigmoids),
 * bbox = (dx, dy, log w, log h) in stride units from the cell's top-left corner, kps offsets likewise.
 */
export function decodeYuNet(
  levels: (StrideOutputs & { obj: Float32Array })[],
  inputWidth: number,
  threshold: number,
): Candidate[] {
  const out: Candidate[] = [];
  for (const { stride, scores, obj, bbox, kps } of levels) {
    const fw = Math.ceil(inputWidth / stride);
    for (let i = 0; i < scores.length; i++) {
      const score = Math.sqrt(Math.max(0, Math.min(1, scores[i])) * Math.max(0, Math.min(1, obj[i])));
      if (score < threshold) continue;
      const col = i % fw;
      const row = Math.floor(i / fw);
      const cx = (col + bbox[i * 4]) * stride;
      const cy = (row + bbox[i * 4 + 1]) * stride;
      const w = Math.exp(bbox[i * 4 + 2]) * stride;
      const h = Math.exp(bbox[i * 4 + 3]) * stride;
      const c: Candidate = { x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score };
      if (kps) {
        c.points = [];
        for (let k = 0; k < 5; k++) c.points.push((col + kps[i * 10 + k * 2]) * stride, (row + kps[i * 10 + k * 2 + 1]) * stride);
      }
      out.push(c);
    }
  }
  return out;
}
