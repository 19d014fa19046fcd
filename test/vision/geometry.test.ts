import { describe, expect, it } from 'vitest';
import {
  applyAffine,
  ARCFACE_112,
  candidateFromInput,
  fromInput,
  invertAffine,
  iou,
  landmarks68To5,
  letterbox,
  nms,
  scaleFaces,
  similarityTransform,
  toInput,
  type Candidate,
} from '../../src/vision/geometry.js';
import { cosineSimilarity, l2Normalize } from '../../src/vectors.js';

const box = (x1: number, y1: number, x2: number, y2: number, score: number): Candidate => ({ x1, y1, x2, y2, score });

describe('IoU and NMS', () => {
  it('computes IoU exactly', () => {
    expect(iou(box(0, 0, 10, 10, 1), box(5, 0, 15, 10, 1))).toBeCloseTo(50 / 150, 12);
    expect(iou(box(0, 0, 10, 10, 1), box(10, 10, 20, 20, 1))).toBe(0);
    expect(iou(box(0, 0, 10, 10, 1), box(0, 0, 10, 10, 1))).toBe(1);
  });

  it('keeps the highest score first and drops overlaps above the threshold only', () => {
    const a = box(0, 0, 10, 10, 0.8);
    const b = box(1, 0, 11, 10, 0.95); // IoU with a = 90/110
    const c = box(5, 0, 15, 10, 0.9); // IoU with b = 60/140 = 0.43
    const d = box(50, 50, 60, 60, 0.5);
    expect(nms([a, b, c, d], 0.5)).toEqual([b, c, d]);
    expect(nms([a, b, c, d], 0.4)).toEqual([b, d]);
    expect(nms([a, b, c, d], 0.5, 1)).toEqual([b]);
  });

  it('does not rank by the bottom edge (the package JS did)', () => {
    const low = box(0, 0, 10, 100, 0.6);
    const high = box(0, 0, 10, 90, 0.99);
    expect(nms([low, high], 0.5)[0]).toBe(high);
  });
});

describe('similarityTransform (Umeyama)', () => {
  it('recovers a known rotation, scale and translation exactly', () => {
    const angle = 0.3;
    const s = 1.7;
    const m: [number, number, number, number, number, number] = [
      s * Math.cos(angle), -s * Math.sin(angle), 12.5,
      s * Math.sin(angle), s * Math.cos(angle), -4.25,
    ];
    const src: [number, number][] = [[10, 20], [40, 22], [25, 40], [14, 55], [37, 54]];
    const dst = src.map(([x, y]) => applyAffine(m, x, y));
    const est = similarityTransform(src, dst);
    for (let i = 0; i < 6; i++) expect(est[i]).toBeCloseTo(m[i], 9);
  });

  it('is the least-squares fit with noise and maps landmarks near the ArcFace points', () => {
    const src = ARCFACE_112.map(([x, y]) => [x * 2 + 100 + (x % 3) * 0.1, y * 2 + 50] as [number, number]);
    const est = similarityTransform(src, ARCFACE_112);
    const mapped = src.map(([x, y]) => applyAffine(est, x, y));
    mapped.forEach(([x, y], i) => {
      expect(x).toBeCloseTo(ARCFACE_112[i][0], 0);
      expect(y).toBeCloseTo(ARCFACE_112[i][1], 0);
    });
    expect(est[0]).toBeCloseTo(0.5, 2);
    expect(est[1]).toBeCloseTo(0, 2);
  });

  it('inverts affine transforms', () => {
    const m: [number, number, number, number, number, number] = [0.5, -0.2, 3, 0.2, 0.5, -7];
    const inv = invertAffine(m);
    const [x, y] = applyAffine(m, 11, -4);
    const [bx, by] = applyAffine(inv, x, y);
    expect(bx).toBeCloseTo(11, 10);
    expect(by).toBeCloseTo(-4, 10);
  });
});

describe('letterbox', () => {
  it('fits, centres and round-trips coordinates', () => {
    const lb = letterbox(640, 640, 320, 240);
    expect(lb.scale).toBe(0.375);
    expect(lb.offsetX).toBe(40);
    expect(lb.offsetY).toBe(0);
    for (const [x, y] of [[0, 0], [639, 17], [320.5, 600]]) {
      const [ix, iy] = toInput(lb, x, y);
      const [bx, by] = fromInput(lb, ix, iy);
      expect(bx).toBeCloseTo(x, 9);
      expect(by).toBeCloseTo(y, 9);
    }
    const tl = letterbox(1000, 500, 640, 640, 'topleft');
    expect([tl.scale, tl.offsetX, tl.offsetY]).toEqual([0.64, 0, 0]);
  });

  it('maps candidates with points back to the image', () => {
    const lb = letterbox(1280, 720, 320, 240); // scale 0.25, offset y = 30
    const c = candidateFromInput(lb, { x1: 10, y1: 40, x2: 50, y2: 90, score: 0.9, points: [20, 50] });
    expect(c).toEqual({ x1: 40, y1: 40, x2: 200, y2: 240, score: 0.9, points: [80, 80] });
  });
});

describe('landmarks and helpers', () => {
  it('reduces iBUG-68 to five ArcFace-order points', () => {
    const p = new Float32Array(136);
    for (let i = 0; i < 68; i++) {
      p[i * 2] = i;
      p[i * 2 + 1] = 1000 + i;
    }
    expect(landmarks68To5(p)).toEqual([
      [39, 1039],
      [45, 1045],
      [30, 1030],
      [54, 1054],
      [59, 1059],
    ]);
  });

  it('scales faces to original pixels', () => {
    const [f] = scaleFaces([{ box: { x: 1, y: 2, width: 3, height: 4 }, score: 0.5, landmarks: [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]] }], 2);
    expect(f.box).toEqual({ x: 2, y: 4, width: 6, height: 8 });
    expect(f.landmarks[4]).toEqual([10, 10]);
  });

  it('normalises embeddings and computes cosine similarity', () => {
    const v = l2Normalize([3, 4]);
    expect(Array.from(v)).toEqual([0.6000000238418579, 0.800000011920929]);
    expect(cosineSimilarity([1, 0], [0, 1])).toBe(0);
    expect(cosineSimilarity([1, 2], [2, 4])).toBeCloseTo(1, 12);
    expect(cosineSimilarity([1, 0], [-1, 0])).toBe(-1);
  });
});
