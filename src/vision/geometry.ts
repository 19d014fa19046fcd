/** Pure geometry: boxes, IoU NMS, similarity transforms, letterbox mapping. No ORT, no sharp. */
import type { Box, DetectedFace, Landmarks5 } from './types.js';

/** A detection in some coordinate frame before NMS: corner box, score, optional points. */
export type Candidate = { x1: number; y1: number; x2: number; y2: number; score: number; points?: number[] };

export function iou(a: Candidate, b: Candidate): number {
  const ix = Math.max(0, Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1));
  const iy = Math.max(0, Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1));
  const inter = ix * iy;
  if (inter <= 0) return 0;
  const areaA = Math.max(0, a.x2 - a.x1) * Math.max(0, a.y2 - a.y1);
  const areaB = Math.max(0, b.x2 - b.x1) * Math.max(0, b.y2 - b.y1);
  return inter / (areaA + areaB - inter);
}

/** Standard greedy NMS: highest score first, drop any later box whose IoU with a kept one exceeds `threshold`. */
export function nms<T extends Candidate>(candidates: T[], threshold: number, maxKeep = Infinity): T[] {
  const sorted = [...candidates].sort((a, b) => b.score - a.score);
  const kept: T[] = [];
  const removed = new Uint8Array(sorted.length);
  for (let i = 0; i < sorted.length && kept.length < maxKeep; i++) {
    if (removed[i]) continue;
    kept.push(sorted[i]);
    for (let j = i + 1; j < sorted.length; j++) {
      if (!removed[j] && iou(sorted[i], sorted[j]) > threshold) removed[j] = 1;
    }
  }
  return kept;
}

/** 2x3 affine matrix [a, b, c, d, e, f]: x' = a x + b y + c, y' = d x + e y + f. */
export type Affine = [number, number, number, number, number, number];

export function applyAffine(m: Affine, x: number, y: number): [number, number] {
  return [m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]];
}

export function invertAffine(m: Affine): Affine {
  const [a, b, c, d, e, f] = m;
  const det = a * e - b * d;
  if (Math.abs(det) < 1e-12) throw new Error('singular affine transform');
  const ia = e / det;
  const ib = -b / det;
  const id = -d / det;
  const ie = a / det;
  return [ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f)];
}

/**
 * Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping `src` onto `dst`:
 * Umeyama's estimate, which in 2-D has this closed form.
 */
export function similarityTransform(src: [number, number][], dst: [number, number][]): Affine {
  const n = src.length;
  if (n < 2 || dst.length !== n) throw new Error('similarityTransform needs two or more point pairs');
  let sx = 0;
  let sy = 0;
  let dx = 0;
  let dy = 0;
  for (let i = 0; i < n; i++) {
    sx += src[i][0];
    sy += src[i][1];
    dx += dst[i][0];
    dy += dst[i][1];
  }
  sx /= n;
  sy /= n;
  dx /= n;
  dy /= n;
  let num1 = 0;
  let num2 = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    const px = src[i][0] - sx;
    const py = src[i][1] - sy;
    const qx = dst[i][0] - dx;
    const qy = dst[i][1] - dy;
    num1 += px * qx + py * qy;
    num2 += px * qy - py * qx;
    den += px * px + py * py;
  }
  if (den < 1e-12) throw new Error('similarityTransform: source points coincide');
  const a = num1 / den;
  const b = num2 / den;
  return [a, -b, dx - (a * sx - b * sy), b, a, dy - (b * sx + a * sy)];
}

/** ArcFace reference points for a 112x112 crop (InsightFace). */
export const ARCFACE_112: [number, number][] = [
  [38.2946, 51.6963],
  [73.5318, 51.5014],
  [56.0252, 71.7366],
  [41.5493, 92.3655],
  [70.7299, 92.2041],
];

/**
 * Where an image goes inside a fixed model input, keeping its aspect ratio. `scale` is input px per
 * image px; the image's top-left lands at (`offsetX`, `offsetY`).
 */
export type Letterbox = { inputWidth: number; inputHeight: number; scale: number; offsetX: number; offsetY: number };

export function letterbox(
  imageWidth: number,
  imageHeight: number,
  inputWidth: number,
  inputHeight: number,
  align: 'center' | 'topleft' = 'center',
  maxScale = Infinity,
): Letterbox {
  const scale = Math.min(inputWidth / imageWidth, inputHeight / imageHeight, maxScale);
  const offsetX = align === 'center' ? (inputWidth - imageWidth * scale) / 2 : 0;
  const offsetY = align === 'center' ? (inputHeight - imageHeight * scale) / 2 : 0;
  return { inputWidth, inputHeight, scale, offsetX, offsetY };
}

export function toInput(lb: Letterbox, x: number, y: number): [number, number] {
  return [x * lb.scale + lb.offsetX, y * lb.scale + lb.offsetY];
}

export function fromInput(lb: Letterbox, x: number, y: number): [number, number] {
  return [(x - lb.offsetX) / lb.scale, (y - lb.offsetY) / lb.scale];
}

/** Maps a candidate from letterboxed input pixels back to image pixels. */
export function candidateFromInput(lb: Letterbox, c: Candidate): Candidate {
  const [x1, y1] = fromInput(lb, c.x1, c.y1);
  const [x2, y2] = fromInput(lb, c.x2, c.y2);
  const out: Candidate = { x1, y1, x2, y2, score: c.score };
  if (c.points) {
    out.points = c.points.map((v, i) => (i % 2 === 0 ? (v - lb.offsetX) / lb.scale : (v - lb.offsetY) / lb.scale));
  }
  return out;
}

/** Clips a corner box to the image; returns null when nothing is left. */
export function clipCandidate(c: Candidate, width: number, height: number): Candidate | null {
  const x1 = Math.max(0, Math.min(width, c.x1));
  const y1 = Math.max(0, Math.min(height, c.y1));
  const x2 = Math.max(0, Math.min(width, c.x2));
  const y2 = Math.max(0, Math.min(height, c.y2));
  if (x2 - x1 < 1 || y2 - y1 < 1) return null;
  return { ...c, x1, y1, x2, y2 };
}

export function candidateBox(c: Candidate): Box {
  return { x: c.x1, y: c.y1, width: c.x2 - c.x1, height: c.y2 - c.y1 };
}

export function pointsToLandmarks(points: number[]): Landmarks5 {
  const out: Landmarks5 = [];
  for (let i = 0; i + 1 < points.length && out.length < 5; i += 2) out.push([points[i], points[i + 1]]);
  return out;
}

/**
 * Multiplies boxes and landmarks by `factor` (e.g. 1 / PreparedImage.scale to go from work to original
 * pixels). Quality signals are left as measured on the image the models saw.
 */
export function scaleFaces<T extends DetectedFace>(faces: T[], factor: number): T[] {
  return faces.map((f) => ({
    ...f,
    box: { x: f.box.x * factor, y: f.box.y * factor, width: f.box.width * factor, height: f.box.height * factor },
    landmarks: f.landmarks.map(([x, y]) => [x * factor, y * factor] as [number, number]),
  }));
}

/** Five ArcFace-order points from iBUG-68 landmarks given as [x0, y0, x1, y1, ...]. */
export function landmarks68To5(p: ArrayLike<number>): Landmarks5 {
  const pt = (i: number): [number, number] => [p[i * 2], p[i * 2 + 1]];
  const mean = (...idx: number[]): [number, number] => {
    let x = 0;
    let y = 0;
    for (const i of idx) {
      x += p[i * 2];
      y += p[i * 2 + 1];
    }
    return [x / idx.length, y / idx.length];
  };
  return [mean(37, 38, 40, 41), mean(43, 44, 46, 47), pt(30), mean(48, 60), mean(54, 64)];
}
