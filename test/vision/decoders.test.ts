import { describe, expect, it } from 'vitest';
import { decodeFrDetect, decodeRetinaFace, decodeScrfd, decodeYuNet, retinaFacePriors } from '../../src/vision/decoders.js';

describe('fr_detect decoder', () => {
  it('reads already-decoded normalised corner boxes and softmax column 1', () => {
    const scores = Float32Array.from([0.9, 0.1, 0.02, 0.98, 0.5, 0.5]);
    const boxes = Float32Array.from([0, 0, 1, 1, 0.25, 0.5, 0.5, 1, 0.1, 0.1, 0.2, 0.2]);
    const out = decodeFrDetect(scores, boxes, 320, 240, 0.9);
    expect(out).toHaveLength(1);
    expect(out[0].x1).toBe(80);
    expect(out[0].y1).toBe(120);
    expect(out[0].x2).toBe(160);
    expect(out[0].y2).toBe(240);
    expect(out[0].score).toBeCloseTo(0.98, 6);
  });
});

describe('RetinaFace decoder', () => {
  it('builds 16800 priors for 640x640 in network order', () => {
    const p = retinaFacePriors(640, 640);
    expect(p.length).toBe(16800 * 4);
    expect(Array.from(p.slice(0, 8))).toEqual([4 / 640, 4 / 640, 16 / 640, 16 / 640, 4 / 640, 4 / 640, 32 / 640, 32 / 640].map(Math.fround));
    // First prior of stride 16 after the 80*80*2 of stride 8.
    expect(Array.from(p.slice(12800 * 4, 12800 * 4 + 4))).toEqual([8 / 640, 8 / 640, 64 / 640, 64 / 640].map(Math.fround));
    expect(Array.from(p.slice(-4))).toEqual([(19.5 * 32) / 640, (19.5 * 32) / 640, 512 / 640, 512 / 640].map(Math.fround));
  });

  it('decodes centre/size deltas and landmarks with the variances', () => {
    const priors = Float32Array.from([0.5, 0.5, 0.1, 0.2, 0.1, 0.1, 0.1, 0.1]);
    const loc = Float32Array.from([1, -1, Math.log(2) / 0.2, 0, 0, 0, 0, 0]);
    const conf = Float32Array.from([0.05, 0.95, 0.99, 0.01]);
    const landms = new Float32Array(20);
    landms.set([1, 1, -1, -1, 0, 0, 2, 0, 0, 2]);
    const out = decodeRetinaFace(loc, conf, landms, priors, 100, 200, 0.5);
    expect(out).toHaveLength(1);
    const c = out[0];
    // cx = 0.5 + 1*0.1*0.1 = 0.51, cy = 0.5 - 0.1*0.2 = 0.48, w = 0.1*2 = 0.2, h = 0.2.
    expect(c.x1).toBeCloseTo((0.51 - 0.1) * 100, 4);
    expect(c.x2).toBeCloseTo((0.51 + 0.1) * 100, 4);
    expect(c.y1).toBeCloseTo((0.48 - 0.1) * 200, 4);
    expect(c.y2).toBeCloseTo((0.48 + 0.1) * 200, 4);
    expect(c.points![0]).toBeCloseTo(0.51 * 100, 4);
    expect(c.points![1]).toBeCloseTo((0.5 + 0.1 * 0.2) * 200, 4);
    expect(c.points![6]).toBeCloseTo((0.5 + 2 * 0.1 * 0.1) * 100, 4);
    expect(c.points![9]).toBeCloseTo((0.5 + 2 * 0.1 * 0.2) * 200, 4);
  });
});

describe('SCRFD decoder', () => {
  it('uses anchor centres per stride (2 anchors per cell) and distances in stride units', () => {
    // 32x16 input: stride 8 -> 4x2 cells x 2 anchors = 16 anchors.
    const scores = new Float32Array(16);
    const bbox = new Float32Array(64);
    const kps = new Float32Array(160);
    const i = 11; // cell 5 = (x 1, y 1), second anchor
    scores[i] = 0.8;
    bbox.set([1, 0.5, 2, 1.5], i * 4);
    kps.set([0.5, 0.25, 0, 0, 0, 0, 0, 0, -1, -1], i * 10);
    const out = decodeScrfd([{ stride: 8, scores, bbox, kps }], 32, 16, 0.5);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ x1: 0, y1: 4, x2: 24, y2: 20 });
    expect(out[0].score).toBeCloseTo(0.8, 6);
    expect(out[0].points!.slice(0, 2)).toEqual([12, 10]);
    expect(out[0].points!.slice(8)).toEqual([0, 0]);
  });
});

describe('YuNet decoder', () => {
  it('combines cls and obj and decodes centre/log-size', () => {
    const scores = Float32Array.from([0.1, 0.81]);
    const obj = Float32Array.from([0.1, 1]);
    const bbox = new Float32Array(8);
    bbox.set([0.5, 0.5, Math.log(2), Math.log(4)], 4);
    const kps = new Float32Array(20);
    const out = decodeYuNet([{ stride: 8, scores, obj, bbox, kps }], 16, 0.5);
    expect(out).toHaveLength(1);
    expect(out[0].score).toBeCloseTo(0.9, 6);
    const { x1, y1, x2, y2 } = out[0];
    [x1, y1, x2, y2].forEach((v, k) => expect(v).toBeCloseTo([4, -12, 20, 20][k], 4));
  });
});
