import { describe, expect, it } from 'vitest';
import { alignFace, attributeCrop, estimateYaw } from '../../src/vision/describer.js';
import { applyAffine, ARCFACE_112, invertAffine, similarityTransform } from '../../src/vision/geometry.js';
import { cropRegion, packOnCanvas, packTensor, rotateImage, resizeImage, unrotatePoint, warpAffine } from '../../src/vision/image-ops.js';
import { unrotateFace } from '../../src/vision/detector.js';
import type { RgbImage } from '../../src/vision/types.js';

function blank(width: number, height: number, value = 0): RgbImage {
  return { data: new Uint8Array(width * height * 3).fill(value), width, height };
}
function setPixel(img: RgbImage, x: number, y: number, rgb: [number, number, number]) {
  img.data.set(rgb, (y * img.width + x) * 3);
}
function brightest(data: Float32Array, width: number): [number, number] {
  let best = -1;
  let at = 0;
  for (let i = 0; i < data.length / 3; i++) if (data[i * 3] > best) [best, at] = [data[i * 3], i];
  return [at % width, Math.floor(at / width)];
}

describe('warpAffine', () => {
  it('places source points where the transform says', () => {
    const img = blank(200, 100);
    setPixel(img, 150, 30, [255, 255, 255]);
    // Output (u, v) samples source (2u + 10, 2v + 4): source (150, 30) lands at (70, 13).
    const out = warpAffine(img, [2, 0, 10, 0, 2, 4], 100, 50, 0);
    expect(brightest(out.data, 100)).toEqual([70, 13]);
    expect(out.data[(13 * 100 + 70) * 3]).toBe(255);
  });

  it('pads outside the image and interpolates bilinearly', () => {
    const img = blank(2, 1);
    setPixel(img, 0, 0, [0, 0, 0]);
    setPixel(img, 1, 0, [100, 100, 100]);
    const out = warpAffine(img, [1, 0, 0.25, 0, 1, 0], 3, 1, 50);
    expect(out.data[0]).toBeCloseTo(25, 4); // between the two pixels
    expect(out.data[3]).toBeCloseTo(0.75 * 100 + 0.25 * 50, 4); // right neighbour is padding
    expect(out.data[6]).toBe(50); // fully outside
  });

  it('aligns five landmarks onto the ArcFace reference points', () => {
    const img = blank(400, 300);
    const angle = -0.2;
    const m = [2 * Math.cos(angle), -2 * Math.sin(angle), 120, 2 * Math.sin(angle), 2 * Math.cos(angle), 40] as [number, number, number, number, number, number];
    const landmarks = ARCFACE_112.map(([x, y]) => applyAffine(m, x, y));
    // A 9x9 white square on the left eye only.
    const [ex, ey] = landmarks[0].map(Math.round);
    for (let dy = -4; dy <= 4; dy++) for (let dx = -4; dx <= 4; dx++) setPixel(img, ex + dx, ey + dy, [255, 255, 255]);
    const toCrop = similarityTransform(landmarks, ARCFACE_112);
    const back = landmarks.map(([x, y]) => applyAffine(toCrop, x, y));
    back.forEach(([x, y], i) => {
      expect(x).toBeCloseTo(ARCFACE_112[i][0], 6);
      expect(y).toBeCloseTo(ARCFACE_112[i][1], 6);
    });
    const crop = alignFace(img, landmarks);
    expect(crop.width).toBe(112);
    const at = ([x, y]: [number, number]) => crop.data[(Math.round(y) * 112 + Math.round(x)) * 3];
    expect(at(ARCFACE_112[0])).toBe(255);
    for (const p of ARCFACE_112.slice(1)) expect(at(p)).toBe(0);
    expect(applyAffine(invertAffine(toCrop), 0, 0)[0]).toBeCloseTo(120, 6);
  });
});

describe('cropRegion', () => {
  const ramp = (w: number, h: number) => ({ data: Uint8Array.from({ length: w * h * 3 }, (_, i) => Math.floor(i / 3) * 10), width: w, height: h });

  it('returns the pixels themselves for the whole image at its own size', () => {
    const img = ramp(3, 2);
    expect(Array.from(cropRegion(img, { x: 0, y: 0, width: 3, height: 2 }, 3, 2).data)).toEqual(Array.from(img.data));
  });

  it('averages exact 2x2 blocks when halving', () => {
    // Pixel (x, y) of the 4x4 ramp holds 10 * (4y + x).
    const out = cropRegion(ramp(4, 4), { x: 0, y: 0, width: 4, height: 4 }, 2, 2, 0, 2);
    expect(Array.from(out.data.filter((_, i) => i % 3 === 0))).toEqual([25, 45, 105, 125]);
  });

  it('pads outside the image', () => {
    const out = cropRegion(ramp(2, 2), { x: -2, y: 0, width: 4, height: 2 }, 4, 2, 99);
    expect(Array.from(out.data.filter((_, i) => i % 3 === 0))).toEqual([99, 99, 0, 10, 99, 99, 20, 30]);
  });
});

describe('native shrink and letterbox canvas', () => {
  it('enlarges and returns same-size images untouched', async () => {
    const img = blank(4, 3, 90);
    expect(await resizeImage(img, 4, 3)).toBe(img);
    const out = await resizeImage(img, 8, 6);
    expect([out.width, out.height, out.data.length]).toEqual([8, 6, 8 * 6 * 3]);
    expect(Math.min(...out.data)).toBeGreaterThanOrEqual(89);
  });

  it('shrinks a uniform image to the same colour and size', async () => {
    const out = await resizeImage(blank(64, 48, 200), 16, 12);
    expect([out.width, out.height, out.data.length]).toEqual([16, 12, 16 * 12 * 3]);
    expect(Math.min(...out.data)).toBeGreaterThanOrEqual(199);
    expect(Math.max(...out.data)).toBeLessThanOrEqual(201);
  });

  it('packs content placed at an integer offset, padding the rest', () => {
    const img = blank(2, 2, 50);
    const raw = { order: 'rgb' as const, mean: [0, 0, 0], std: [1, 1, 1] };
    const t = new Float32Array(3 * 4 * 3);
    packOnCanvas(img, { width: 4, height: 3, x: 1, y: 1, pad: 127 }, raw, t);
    const at = (x: number, y: number) => t[y * 4 + x];
    expect([at(0, 0), at(1, 1), at(2, 2), at(3, 2), at(1, 0)]).toEqual([127, 50, 50, 127, 127]);
    // Every plane gets the same placement.
    expect(Array.from(t.subarray(12, 24))).toEqual(Array.from(t.subarray(0, 12)));
    // Content partly outside the canvas is cut, not wrapped.
    const cut = new Float32Array(3 * 2 * 2);
    packOnCanvas(img, { width: 2, height: 2, x: 1, y: -1, pad: 127 }, raw, cut);
    expect(Array.from(cut.subarray(0, 4))).toEqual([127, 50, 127, 127]);
  });

  it('normalises canvas and content per channel, in BGR and grey too', () => {
    const img = { data: Uint8Array.from([255, 0, 127]), width: 1, height: 1 };
    const t = new Float32Array(3 * 2);
    packOnCanvas(img, { width: 2, height: 1, x: 0, y: 0, pad: 127 }, { order: 'bgr', mean: [127, 127, 127], std: [128, 128, 128] }, t);
    expect(Array.from(t)).toEqual([0, 0, -127 / 128, 0, 1, 0]);
    const g = new Float32Array(2);
    packOnCanvas(img, { width: 2, height: 1, x: 1, y: 0, pad: 0 }, { order: 'grey', mean: [0], std: [1] }, g);
    expect(g[0]).toBe(0);
    expect(g[1]).toBeCloseTo(0.299 * 255 + 0.114 * 127, 4);
  });
});

describe('tensors, rotation and face geometry', () => {
  it('packs planar tensors in RGB, BGR and grey with normalisation', () => {
    const px = { data: Float32Array.from([255, 0, 127, 127, 127, 127]), width: 2, height: 1 };
    const t = new Float32Array(6);
    packTensor(px, { order: 'rgb', mean: [127, 127, 127], std: [128, 128, 128] }, t);
    expect(Array.from(t)).toEqual([1, 0, -127 / 128, 0, 0, 0]);
    packTensor(px, { order: 'bgr', mean: [0, 0, 0], std: [1, 1, 1] }, t);
    expect(Array.from(t)).toEqual([127, 127, 0, 127, 255, 127]);
    const g = new Float32Array(2);
    packTensor(px, { order: 'grey', mean: [0], std: [256] }, g);
    expect(g[1]).toBeCloseTo(127 / 256, 5);
  });

  it('rotates images and maps points back', () => {
    const img = blank(3, 2);
    setPixel(img, 2, 0, [9, 9, 9]); // top-right
    const r1 = rotateImage(img, 1);
    expect([r1.width, r1.height]).toEqual([2, 3]);
    expect(r1.data[(2 * 2 + 1) * 3]).toBe(9); // clockwise: top-right goes to bottom-right
    for (const k of [1, 2, 3]) {
      const r = rotateImage(img, k);
      const at = r.data.findIndex((v, i) => i % 3 === 0 && v === 9) / 3;
      const [x, y] = [at % r.width, Math.floor(at / r.width)];
      const [ox, oy] = unrotatePoint(x + 0.5, y + 0.5, k, 3, 2);
      expect([ox, oy]).toEqual([2.5, 0.5]);
    }
    const face = unrotateFace({ box: { x: 0, y: 0, width: 1, height: 2 }, score: 1, landmarks: [[0.5, 0.5]] }, 1, { width: 3, height: 2 });
    expect(face.box).toEqual({ x: 0, y: 1, width: 2, height: 1 });
  });

  it('builds the attribute crop and a yaw signal', () => {
    expect(attributeCrop({ x: 10, y: 20, width: 40, height: 50 }, 1.4)).toEqual({ x: -5, y: 10, width: 70, height: 70 });
    expect(estimateYaw([[0, 0], [10, 0], [5, 5], [2, 9], [8, 9]])).toBe(0);
    expect(estimateYaw([[0, 0], [10, 0], [10, 5], [2, 9], [8, 9]])).toBe(1);
    expect(estimateYaw([[0, 0], [10, 0], [2.5, 5], [2, 9], [8, 9]])).toBeCloseTo(-0.5, 9);
  });
});
