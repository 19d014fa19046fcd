import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { decodeGenderAge, genderFromSsr, ssrNetMerge } from '../../src/vision/attributes.js';
import { acceptRate, rocAuc, thresholdAtFar } from '../../src/vision/metrics.js';
import { ModelFileError, verifyModels } from '../../src/vision/models.js';
import { packInfo, PACKS, packFiles } from '../../src/vision/packs.js';

describe('SSR-Net merge', () => {
  it('follows the stagewise soft regression formula', () => {
    // Stage 1 certain of bin 2, no shifts, no deltas: 2/3; stages 2 and 3 certain of bin 0: 0.
    const x = [0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    expect(ssrNetMerge(x, 101)).toBeCloseTo((2 / 3) * 101, 9);
    // Stage 2 bin 1 adds 1 / (3 * 3); delta_k 0.5 on stage 1 widens its bins: 2 / (3 * 1.5).
    const y = [0, 0, 1, 0, 1, 0, 1, 0, 0, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    expect(ssrNetMerge(y, 1)).toBeCloseTo(2 / 4.5 + 1 / (4.5 * 3), 9);
    // Index offsets shift the bin: eta = 0.5 on stage 1 bin 1.
    const z = [0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0, 0, 0];
    expect(ssrNetMerge(z, 1)).toBeCloseTo(1.5 / 3, 9);
  });

  it('turns the gender regression into a label with confidence', () => {
    expect(genderFromSsr(0.9)).toEqual({ gender: 'male', confidence: 0.9 });
    expect(genderFromSsr(0.2)).toEqual({ gender: 'female', confidence: 0.8 });
    expect(genderFromSsr(1.3)).toEqual({ gender: 'male', confidence: 1 });
  });

  it('decodes InsightFace genderage', () => {
    const r = decodeGenderAge([0, Math.log(3), 0.31]);
    expect(r.gender).toBe('male');
    expect(r.confidence).toBeCloseTo(0.75, 9);
    expect(r.age).toBeCloseTo(31, 9);
  });
});

describe('verification metrics', () => {
  it('computes AUC with ties and thresholds at a FAR', () => {
    expect(rocAuc([0.9, 0.8], [0.1, 0.2])).toBe(1);
    expect(rocAuc([0.5], [0.5])).toBe(0.5);
    expect(rocAuc([0.3, 0.9], [0.5])).toBe(0.5);
    const impostor = Array.from({ length: 1000 }, (_, i) => i / 1000);
    const t = thresholdAtFar(impostor, 1e-2);
    expect(acceptRate(impostor, t)).toBe(0.01);
    expect(t).toBeGreaterThan(0.989);
    expect(t).toBeLessThan(0.9901);
  });
});

/** An empty models folder, removed when the test ends. */
function tempModelsDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'models-'));
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('model packs and verification', () => {
  it('lists every file of each pack with checksums', () => {
    expect(packFiles(PACKS.default).map((f) => f.file)).toEqual(['fr_detect.onnx', 'fr_landmark.onnx', 'fr_feature.onnx', 'fr_age.onnx', 'fr_gender.onnx']);
    for (const pack of Object.values(PACKS)) for (const f of packFiles(pack)) expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(packInfo('default')).toMatchObject({ name: 'default', embeddingSize: 512, collectionSuffix: 'fr_feature_87aacdfe' });
  });

  it('throws one clear error naming a missing file and the command that fetches it', () => {
    const dir = tempModelsDir();
    expect(() => verifyModels(dir, 'default')).toThrowError(ModelFileError);
    expect(() => verifyModels(dir, 'default')).toThrowError(new RegExp(`model file missing: ${path.join(dir, 'fr_detect.onnx')}.*npm run setup`));
  });

  it('rejects a corrupt file', () => {
    const dir = tempModelsDir();
    fs.writeFileSync(path.join(dir, 'fr_detect.onnx'), 'not a model');
    try {
      verifyModels(dir, 'default');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ModelFileError);
      expect((error as ModelFileError).code).toBe('model_corrupt');
      expect((error as Error).message).toContain('fr_detect.onnx');
      expect((error as Error).message).toContain('npm run setup');
    }
  });
});
