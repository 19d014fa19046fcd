/** The vision layer's public entry points. Knows nothing of HTTP, queues or SQL. */
import { PackDescriber } from './describer.js';
import { PackDetector } from './detector.js';
import { resolvePack } from './packs.js';
import type { VisionOptions } from './types.js';

export type * from './types.js';
export { encodeFaceCrop } from './crops.js';
export { scaleFaces } from './geometry.js';
export { ModelFileError, verifyModels } from './models.js';
export { packInfo, PACKS, type DetectorKind } from './packs.js';
export type { PackDetector } from './detector.js';
export type { PackDescriber } from './describer.js';

/** Detector with the pack's landmark step: every face has 5 landmarks; faces sorted by score. */
export async function createDetector(opts: VisionOptions): Promise<PackDetector> {
  const pack = resolvePack(opts.pack, { detector: opts.detector });
  return PackDetector.create(opts.modelsDir, pack, opts.threads ?? 1, opts.detectThreshold);
}

/** Aligner + recognizer + age/gender for the pack. */
export async function createDescriber(opts: VisionOptions): Promise<PackDescriber> {
  const pack = resolvePack(opts.pack, { attributes: opts.attributes });
  return PackDescriber.create(opts.modelsDir, pack, opts.threads ?? 1, opts.alignSupersample ?? 1);
}
