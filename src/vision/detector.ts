/** Face detection for any pack: letterbox, run, decode, map back, NMS, then 5 landmarks per face. */
import { performance } from 'node:perf_hooks';
import {
  candidateBox,
  candidateFromInput,
  clipCandidate,
  landmarks68To5,
  letterbox,
  nms,
  type Letterbox,
  pointsToLandmarks,
  type Candidate,
} from './geometry.js';
import { decodeFrDetect, decodeRetinaFace, decodeScrfd, decodeYuNet, retinaFacePriors, type StrideOutputs } from './decoders.js';
import { cropRegion, packOnCanvas, packTensor, resizeImage, rotateImage, unrotatePoint } from './image-ops.js';
import { verifyModelFile } from './models.js';
import type { DetectorSpec, LandmarkSpec, PackManifest } from './packs.js';
import { createSession, tensor, type Session, type ort } from './session.js';
import type { Box, DetectedFace, FaceDetector, RgbImage } from './types.js';

export type DetectorTimings = { detect: number; landmarks: number; calls: number; rotationProbes: number };

/** The image as the detector sees it: pixels at the letterbox scale, their place on the input canvas. */
type DetectorView = { content: RgbImage; x: number; y: number; letterbox: Letterbox };

export class PackDetector implements FaceDetector {
  readonly timings: DetectorTimings = { detect: 0, landmarks: 0, calls: 0, rotationProbes: 0 };
  private readonly input: Float32Array;
  private readonly landmarkInput: Float32Array;
  private priors?: Float32Array;

  private constructor(
    private readonly spec: DetectorSpec,
    private readonly session: Session,
    private readonly landmarkSpec: LandmarkSpec | undefined,
    private readonly landmarkSession: Session | undefined,
    private readonly threshold: number,
  ) {
    this.input = new Float32Array(3 * spec.input.width * spec.input.height);
    this.landmarkInput = new Float32Array(landmarkSpec ? landmarkSpec.size * landmarkSpec.size : 0);
    if (spec.kind === 'retinaface') this.priors = retinaFacePriors(spec.input.width, spec.input.height);
  }

  static async create(modelsDir: string, pack: PackManifest, threads: number, threshold?: number): Promise<PackDetector> {
    const file = verifyModelFile(modelsDir, pack.detector.model);
    const landmarkFile = pack.landmarks ? verifyModelFile(modelsDir, pack.landmarks.model) : undefined;
    const session = await createSession(file, threads);
    const landmarkSession = landmarkFile ? await createSession(landmarkFile, threads) : undefined;
    return new PackDetector(pack.detector, session, pack.landmarks, landmarkSession, threshold ?? pack.detector.defaultThreshold);
  }

  async detect(image: RgbImage): Promise<DetectedFace[]> {
    const t0 = performance.now();
    const upright = await this.view(image);
    let kept = await this.candidates(image, upright);
    let turns = 0;
    const rot = this.spec.rotation;
    const best = kept[0];
    if (rot && (!best || best.score < rot.tryBelow || best.x2 - best.x1 > rot.wideAbove * (best.y2 - best.y1))) {
      turns = await this.probeRotation(image, upright, best?.score ?? 0);
    }
    let work = image;
    if (turns !== 0) {
      work = rotateImage(image, turns);
      kept = await this.candidates(work);
    }
    const t1 = performance.now();
    const faces: DetectedFace[] = [];
    for (const c of kept) {
      const box = candidateBox(c);
      const landmarks = c.points ? pointsToLandmarks(c.points) : await this.landmarks(work, box);
      faces.push(turns === 0 ? { box, score: c.score, landmarks } : unrotateFace({ box, score: c.score, landmarks }, turns, image));
    }
    const t2 = performance.now();
    this.timings.detect += t1 - t0;
    this.timings.landmarks += t2 - t1;
    this.timings.calls++;
    return faces;
  }

  /** Boxes (with detector points, if any) in image pixels after NMS, best first. */
  private async candidates(image: RgbImage, view?: DetectorView): Promise<Candidate[]> {
    const v = view ?? (await this.view(image));
    const mapped: Candidate[] = [];
    for (const c of await this.run(v, this.threshold)) {
      const m = clipCandidate(candidateFromInput(v.letterbox, c), image.width, image.height);
      if (m) mapped.push(m);
    }
    return nms(mapped, this.spec.nmsIou);
  }

  /**
   * Letterboxes the image for the detector. Scaling goes through sharp (native, off the event loop):
   * a JS pass over a large image cost more than the detector model itself.
   */
  private async view(image: RgbImage): Promise<DetectorView> {
    const { width: W, height: H } = this.spec.input;
    const lb = letterbox(image.width, image.height, W, H, this.spec.align, this.spec.maxUpscale);
    const cw = Math.max(1, Math.min(W, Math.round(image.width * lb.scale)));
    const ch = Math.max(1, Math.min(H, Math.round(image.height * lb.scale)));
    const content = await resizeImage(image, cw, ch);
    const x = Math.round(lb.offsetX);
    const y = Math.round(lb.offsetY);
    // The content's centre stays the image's centre: offsets absorb the rounding of its size.
    const mapping = { ...lb, offsetX: x + (cw - image.width * lb.scale) / 2, offsetY: y + (ch - image.height * lb.scale) / 2 };
    return { content, x, y, letterbox: mapping };
  }

  /** Raw candidates of one view, in input pixels. */
  private async run(view: DetectorView, threshold: number): Promise<Candidate[]> {
    const { width: W, height: H } = this.spec.input;
    packOnCanvas(view.content, { width: W, height: H, x: view.x, y: view.y, pad: this.spec.pad }, this.spec.norm, this.input);
    const out = await this.session.run({ [this.session.inputNames[0]]: tensor(this.input, [1, 3, H, W]) });
    return this.decode(out, threshold);
  }

  /**
   * Quarter turns (clockwise) that make the faces upright, probed on the upright view's pixels (turned,
   * and refitted for a quarter turn); 0 when upright wins.
   */
  private async probeRotation(image: RgbImage, upright: DetectorView, uprightScore: number): Promise<number> {
    const rot = this.spec.rotation!;
    const { width: W, height: H } = this.spec.input;
    const { content } = upright;
    const side = letterbox(content.height, content.width, W, H, this.spec.align);
    // A quarter turn of a portrait view fills the input larger: enlarging the view would blur it, so
    // those pixels come from the image. Fitted before turning (a quarter turn swaps width and height).
    const source = side.scale > 1 ? image : content;
    const f = (side.scale * content.width) / source.width;
    const sideways = await resizeImage(
      source,
      Math.max(1, Math.min(H, Math.round(source.width * f))),
      Math.max(1, Math.min(W, Math.round(source.height * f))),
    );
    this.timings.rotationProbes++;
    const logit = (p: number) => Math.log(Math.max(p, 1e-9) / Math.max(1 - p, 1e-9));
    let best = 0;
    let bestScore = 0;
    for (const turns of [1, 2, 3]) {
      const turned = rotateImage(turns === 2 ? content : sideways, turns);
      const lb = letterbox(turned.width, turned.height, W, H, this.spec.align, 1);
      const view = { content: turned, x: Math.round(lb.offsetX), y: Math.round(lb.offsetY), letterbox: lb };
      // Only faces on the picture count, not boxes found in the padding around it.
      const onPicture = (c: Candidate) => {
        const cx = (c.x1 + c.x2) / 2;
        const cy = (c.y1 + c.y2) / 2;
        return cx >= view.x && cx <= view.x + turned.width && cy >= view.y && cy <= view.y + turned.height;
      };
      for (const c of await this.run(view, rot.accept)) {
        if (c.score > bestScore && onPicture(c)) {
          bestScore = c.score;
          best = turns;
        }
      }
    }
    return bestScore >= rot.accept && logit(bestScore) - logit(uprightScore) >= rot.marginLogit ? best : 0;
  }

  private decode(out: ort.InferenceSession.OnnxValueMapType, threshold: number): Candidate[] {
    const { width: W, height: H } = this.spec.input;
    const values = Object.values(out) as ort.Tensor[];
    const byLastDim = (d: number) => values.filter((t) => t.dims[t.dims.length - 1] === d);
    switch (this.spec.kind) {
      case 'fr_detect':
        return decodeFrDetect(out.scores.data as Float32Array, out.boxes.data as Float32Array, W, H, threshold);
      case 'retinaface': {
        // Output names are opaque: loc has 4 values per prior, conf 2, landmarks 10.
        const [loc] = byLastDim(4);
        const [conf] = byLastDim(2);
        const [landms] = byLastDim(10);
        return decodeRetinaFace(loc.data as Float32Array, conf.data as Float32Array, landms.data as Float32Array, this.priors!, W, H, threshold);
      }
      case 'scrfd': {
        const levels: StrideOutputs[] = [8, 16, 32].map((stride) => {
          const n = Math.ceil(W / stride) * Math.ceil(H / stride) * 2;
          const pick = (d: number) => byLastDim(d).find((t) => t.dims[0] * (t.dims.length > 2 ? t.dims[1] : 1) === n || t.data.length === n * d);
          return {
            stride,
            scores: pick(1)!.data as Float32Array,
            bbox: pick(4)!.data as Float32Array,
            kps: pick(10)?.data as Float32Array | undefined,
          };
        });
        return decodeScrfd(levels, W, H, threshold);
      }
      case 'yunet': {
        const levels = [8, 16, 32].map((s) => ({
          stride: s,
          scores: out[`cls_${s}`].data as Float32Array,
          obj: out[`obj_${s}`].data as Float32Array,
          bbox: out[`bbox_${s}`].data as Float32Array,
          kps: out[`kps_${s}`].data as Float32Array,
        }));
        return decodeYuNet(levels, W, threshold);
      }
    }
  }

  /** fr_landmark on a square crop (side = box height, centred, shifted inside the image); 68 -> 5 points. */
  private async landmarks(image: RgbImage, box: Box): Promise<[number, number][]> {
    const spec = this.landmarkSpec!;
    const crop = landmarkCrop(box, image.width, image.height);
    packTensor(cropRegion(image, crop, spec.size, spec.size, 0), spec.norm, this.landmarkInput);
    const session = this.landmarkSession!;
    const out = await session.run({ [session.inputNames[0]]: tensor(this.landmarkInput, [1, 1, spec.size, spec.size]) });
    const p = out[session.outputNames[0]].data as Float32Array;
    const pts = new Float32Array(136);
    for (let i = 0; i < 68; i++) {
      pts[i * 2] = crop.x + p[i * 2] * crop.width;
      pts[i * 2 + 1] = crop.y + p[i * 2 + 1] * crop.height;
    }
    return landmarks68To5(pts);
  }

  async release(): Promise<void> {
    await this.session.release();
    await this.landmarkSession?.release();
  }
}

/** A face found on the image turned `turns` quarter turns clockwise, in the original image's pixels. */
export function unrotateFace(face: DetectedFace, turns: number, original: { width: number; height: number }): DetectedFace {
  const { x, y, width, height } = face.box;
  const a = unrotatePoint(x, y, turns, original.width, original.height);
  const b = unrotatePoint(x + width, y + height, turns, original.width, original.height);
  return {
    score: face.score,
    box: { x: Math.min(a[0], b[0]), y: Math.min(a[1], b[1]), width: Math.abs(a[0] - b[0]), height: Math.abs(a[1] - b[1]) },
    // Points keep the face's own order (its left eye first), which is what alignment needs.
    landmarks: face.landmarks.map(([px, py]) => unrotatePoint(px, py, turns, original.width, original.height)),
  };
}

/** The square the landmark model sees: side = box height, centred on the box, moved inside the image. */
export function landmarkCrop(box: Box, imageWidth: number, imageHeight: number): Box {
  const side = Math.min(box.height, imageWidth, imageHeight);
  let x = box.x + box.width / 2 - side / 2;
  let y = box.y + box.height / 2 - side / 2;
  x = Math.max(0, Math.min(imageWidth - side, x));
  y = Math.max(0, Math.min(imageHeight - side, y));
  return { x, y, width: side, height: side };
}
