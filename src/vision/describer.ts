/** Alignment, embedding, age/gender and quality signals for detected faces. */
import { performance } from 'node:perf_hooks';
import { decodeGenderAge, genderFromSsr, SSRNET_OUTPUTS, ssrNetMerge } from './attributes.js';
import { l2Normalize } from '../vectors.js';
import { ARCFACE_112, invertAffine, similarityTransform } from './geometry.js';
import { cropRegion, laplacianVariance, packTensor, warpAffine, type FloatRgb } from './image-ops.js';
import { verifyModelFile } from './models.js';
import type { AttributeSpec, PackManifest, RecognizerSpec } from './packs.js';
import { createSession, tensor, type Session } from './session.js';
import type { Box, DescribedFace, DetectedFace, FaceDescriber, FaceQuality, Gender, Landmarks5, PackName, RgbImage } from './types.js';

export type DescriberTimings = { align: number; embed: number; attributes: number; faces: number };

/** The ArcFace 112x112 crop for five landmarks (similarity by least squares, bilinear, black outside). */
export function alignFace(image: RgbImage, landmarks: Landmarks5, size = 112, supersample = 1): FloatRgb {
  const ref = size === 112 ? ARCFACE_112 : ARCFACE_112.map(([x, y]) => [(x * size) / 112, (y * size) / 112] as [number, number]);
  const toCrop = similarityTransform(landmarks, ref);
  return warpAffine(image, invertAffine(toCrop), size, size, 0, supersample);
}

/** Square crop around the box, `scale` times its larger side, centred (padded outside the image). */
export function attributeCrop(box: Box, scale: number): Box {
  const side = Math.max(box.width, box.height) * scale;
  return { x: box.x + box.width / 2 - side / 2, y: box.y + box.height / 2 - side / 2, width: side, height: side };
}

/** Yaw from where the nose falls between the eyes, along the eye axis: 0 frontal, +-1 strongly turned. */
export function estimateYaw(l: Landmarks5): number {
  const [le, re, nose] = l;
  const ex = re[0] - le[0];
  const ey = re[1] - le[1];
  const len2 = ex * ex + ey * ey;
  if (len2 < 1e-9) return 0;
  const t = ((nose[0] - le[0]) * ex + (nose[1] - le[1]) * ey) / len2;
  return Math.max(-1, Math.min(1, (t - 0.5) * 2));
}

export class PackDescriber implements FaceDescriber {
  readonly timings: DescriberTimings = { align: 0, embed: 0, attributes: 0, faces: 0 };
  readonly embeddingSize: number;
  private readonly recInput: Float32Array;
  private readonly attrInput: Float32Array;

  private constructor(
    readonly pack: PackName,
    private readonly recognizer: RecognizerSpec,
    private readonly recSession: Session,
    private readonly attributes: AttributeSpec,
    private readonly attrSessions: Session[],
    private readonly supersample: number,
  ) {
    this.embeddingSize = recognizer.embeddingSize;
    this.recInput = new Float32Array(3 * recognizer.size * recognizer.size);
    this.attrInput = new Float32Array(3 * attributes.size * attributes.size);
  }

  static async create(modelsDir: string, pack: PackManifest, threads: number, supersample = 1): Promise<PackDescriber> {
    const recFile = verifyModelFile(modelsDir, pack.recognizer.model);
    const attrFiles =
      pack.attributes.kind === 'ssrnet'
        ? [verifyModelFile(modelsDir, pack.attributes.age), verifyModelFile(modelsDir, pack.attributes.gender)]
        : [verifyModelFile(modelsDir, pack.attributes.model)];
    const recSession = await createSession(recFile, threads);
    const attrSessions: Session[] = [];
    for (const f of attrFiles) attrSessions.push(await createSession(f, threads));
    return new PackDescriber(pack.name, pack.recognizer, recSession, pack.attributes, attrSessions, supersample);
  }

  async describe(image: RgbImage, faces: DetectedFace[]): Promise<DescribedFace[]> {
    const out: DescribedFace[] = [];
    for (const face of faces) {
      const t0 = performance.now();
      const aligned = alignFace(image, face.landmarks, this.recognizer.size, this.supersample);
      const t1 = performance.now();
      const embedding = await this.embed(aligned);
      const t2 = performance.now();
      const attrs = await this.attributesOf(image, face.box);
      const t3 = performance.now();
      this.timings.align += t1 - t0;
      this.timings.embed += t2 - t1;
      this.timings.attributes += t3 - t2;
      this.timings.faces++;
      const [le, re] = face.landmarks;
      const quality: FaceQuality = {
        eyeDistance: Math.hypot(re[0] - le[0], re[1] - le[1]),
        sharpness: laplacianVariance(aligned),
        yaw: estimateYaw(face.landmarks),
      };
      out.push({ ...face, embedding, ...attrs, quality });
    }
    return out;
  }

  /** Embeds an already aligned crop (recognizer size). */
  async embed(aligned: FloatRgb): Promise<Float32Array> {
    const s = this.recognizer.size;
    packTensor(aligned, this.recognizer.norm, this.recInput);
    const out = await this.recSession.run({ [this.recSession.inputNames[0]]: tensor(this.recInput, [1, 3, s, s]) });
    return l2Normalize(out[this.recSession.outputNames[0]].data as Float32Array);
  }

  private async attributesOf(image: RgbImage, box: Box): Promise<{ age: number; gender: Gender; genderConfidence: number }> {
    const spec = this.attributes;
    const s = spec.size;
    packTensor(cropRegion(image, attributeCrop(box, spec.cropScale), s, s, 0), spec.norm, this.attrInput);
    const input = tensor(this.attrInput, [1, 3, s, s]);
    if (spec.kind === 'ssrnet') {
      const [ageSession, genderSession] = this.attrSessions;
      const flat = async (session: Session) => {
        const r = await session.run({ [session.inputNames[0]]: input });
        const v: number[] = [];
        for (const name of SSRNET_OUTPUTS) for (const x of r[name].data as Float32Array) v.push(x);
        return v;
      };
      const age = ssrNetMerge(await flat(ageSession), 101);
      const g = genderFromSsr(ssrNetMerge(await flat(genderSession), 1));
      return { age: Math.max(0, age), gender: g.gender, genderConfidence: g.confidence };
    }
    const session = this.attrSessions[0];
    const r = await session.run({ [session.inputNames[0]]: input });
    const g = decodeGenderAge(r[session.outputNames[0]].data as Float32Array);
    return { age: g.age, gender: g.gender, genderConfidence: g.confidence };
  }

  async release(): Promise<void> {
    await this.recSession.release();
    for (const s of this.attrSessions) await s.release();
  }
}
