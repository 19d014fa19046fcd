/** Public types of the vision layer. It knows nothing of HTTP, queues or SQL. */
import type { PACK_NAMES } from '../config.js';

/** Interleaved 8-bit RGB pixels, row-major, 3 bytes per pixel. */
export type RgbImage = { data: Uint8Array; width: number; height: number };

export type Box = { x: number; y: number; width: number; height: number };
/** Five points in ArcFace order: left eye, right eye, nose tip, left mouth corner, right mouth corner (image left/right). */
export type Landmarks5 = [number, number][];

export type DetectedFace = { box: Box; score: number; landmarks: Landmarks5 };

export type Gender = 'male' | 'female';

/** Signals the matcher may use to trust or distrust a face. */
export type FaceQuality = {
  /** Inter-ocular distance in pixels of the image the face was found in. */
  eyeDistance: number;
  /** Variance of the Laplacian of the aligned grey crop: low means blurred. */
  sharpness: number;
  /** Rough yaw from landmark symmetry, -1 (turned to one side) .. 1 (the other), 0 frontal. */
  yaw: number;
};

export type DescribedFace = DetectedFace & {
  /** L2-normalised. */
  embedding: Float32Array;
  age: number;
  gender: Gender;
  genderConfidence: number;
  quality: FaceQuality;
};

export type PackName = (typeof PACK_NAMES)[number];

export type VisionOptions = {
  modelsDir: string;
  pack: PackName;
  /** ORT intra-op threads per session. */
  threads?: number;
  detectThreshold?: number;
  /** Swap the pack's detector (e.g. 'yunet'); its landmark source comes with it. */
  detector?: 'fr_detect' | 'retinaface' | 'scrfd' | 'yunet';
  /** Swap the pack's age/gender models: 'ssrnet' (fr_age + fr_gender) or 'genderage' (InsightFace). */
  attributes?: 'ssrnet' | 'genderage';
  /** Anti-aliasing sub-samples per axis (1 = plain bilinear) when the face is much larger than 112 px. */
  alignSupersample?: number;
};

export interface FaceDetector {
  /** Faces sorted by score, coordinates in `image` pixels. */
  detect(image: RgbImage): Promise<DetectedFace[]>;
  release(): Promise<void>;
}

export interface FaceDescriber {
  readonly pack: PackName;
  readonly embeddingSize: number;
  describe(image: RgbImage, faces: DetectedFace[]): Promise<DescribedFace[]>;
  release(): Promise<void>;
}
