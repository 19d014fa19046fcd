/**
 * Model packs: which files, how each model wants its pixels, how its outputs decode. Detector, landmark
 * source, recognizer and attribute models are separate components; a pack names one of each, and
 * VisionOptions may swap any of them.
 */
import type { Normalisation } from './image-ops.js';
import type { PackName } from './types.js';

export const FACEPLUGIN_PACKAGE = 'faceplugin-face-recognition-js@0.0.1';

export type ModelFile = {
  file: string;
  sha256: string;
  bytes: number;
  /** 'npm': extracted by `npm run setup` from FACEPLUGIN_PACKAGE; 'user': copied into MODELS_DIR by the user. */
  source: 'npm' | 'user';
  license: string;
};

export type DetectorKind = 'fr_detect' | 'retinaface' | 'scrfd' | 'yunet';

export type DetectorSpec = {
  id: string;
  kind: DetectorKind;
  model: ModelFile;
  input: { width: number; height: number };
  norm: Normalisation;
  /** Letterbox padding colour in pixel units (0..255, RGB), and where the image sits. */
  pad: number;
  align: 'center' | 'topleft';
  /** Largest enlargement of small images (SCRFD misses faces that fill an upscaled 640 canvas). */
  maxUpscale?: number;
  /** 'detector': the detector emits 5 points; otherwise the named landmark model runs on each box. */
  landmarks: 'detector' | 'fr_landmark';
  nmsIou: number;
  /** Used when VisionOptions.detectThreshold is not given. */
  defaultThreshold: number;
  /**
   * Upside-down / sideways fallback: when the best upright face scores below `tryBelow`, is wider
   * than tall by more than `wideAbove` (width / height), or nothing is found, probe the three other
   * quarter turns on the detector's view; switch when one scores at least `accept` and beats upright
   * by `marginLogit` (in logits). fr_detect scores many sideways faces above 0.999 but draws their
   * boxes wide (width / height 1.0-1.7, against 0.55-1.14 for upright faces), hence the shape test.
   * Chosen from all four turns of the identity images of ../shared/faces (README, Vision models).
   */
  rotation?: { tryBelow: number; wideAbove: number; accept: number; marginLogit: number };
};

export type LandmarkSpec = { id: 'fr_landmark'; model: ModelFile; size: number; norm: Normalisation };

export type RecognizerSpec = {
  id: string;
  model: ModelFile;
  size: number;
  norm: Normalisation;
  embeddingSize: number;
  inputName: string;
};

export type AttributeSpec =
  | { id: 'ssrnet'; kind: 'ssrnet'; age: ModelFile; gender: ModelFile; size: number; norm: Normalisation; cropScale: number }
  | { id: 'genderage'; kind: 'genderage'; model: ModelFile; size: number; norm: Normalisation; cropScale: number };

export type PackManifest = {
  name: PackName;
  detector: DetectorSpec;
  landmarks?: LandmarkSpec;
  recognizer: RecognizerSpec;
  attributes: AttributeSpec;
};

const MIT_FACEPLUGIN = `MIT (${FACEPLUGIN_PACKAGE})`;

export const MODEL_FILES = {
  fr_detect: { file: 'fr_detect.onnx', sha256: '6c0256ccd3164f844736a401faf936ec2930764a87ae39442180887d0c5c8854', bytes: 1217758, source: 'npm', license: MIT_FACEPLUGIN },
  fr_landmark: { file: 'fr_landmark.onnx', sha256: 'f10b0ba1d2a8a099adefede1ebf3733e44fe370715e7303dbeb7f59c02142258', bytes: 1163742, source: 'npm', license: MIT_FACEPLUGIN },
  fr_feature: { file: 'fr_feature.onnx', sha256: '87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581', bytes: 4884269, source: 'npm', license: MIT_FACEPLUGIN },
  fr_age: { file: 'fr_age.onnx', sha256: '74c9b01700cb9ef96f7190a2230218414ff99d231415c4b091a755780cad5e8a', bytes: 201280, source: 'npm', license: MIT_FACEPLUGIN },
  fr_gender: { file: 'fr_gender.onnx', sha256: 'a003e8392a617ca834c7ca2c01e0895f5c354217fb56cd0373935e6e9b9c396e', bytes: 343725, source: 'npm', license: MIT_FACEPLUGIN },
  retinaface_mnet025: {
    file: 'retinaface_mnet025__FaceDetector.onnx',
    sha256: 'f8cce06cdfa5d2a07a8378c8cff4c4f33f0b00a3f24d9ef53042ff591a881eb7',
    bytes: 1709521,
    source: 'user',
    license: 'MIT (biubug6/Pytorch_Retinaface export)',
  },
  scrfd_500m: {
    file: 'scrfd_500m.onnx',
    sha256: '5e4447f50245bbd7966bd6c0fa52938c61474a04ec7def48753668a9d8b4ea3a',
    bytes: 2524817,
    source: 'user',
    license: 'InsightFace: non-commercial research only',
  },
  yunet: {
    file: 'face_detection_yunet_2026may.onnx',
    sha256: 'ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0',
    bytes: 229738,
    source: 'user',
    license: 'MIT (opencv_zoo YuNet)',
  },
  genderage: {
    file: 'genderage__insight_gender_age.onnx',
    sha256: '4fde69b1c810857b88c64a335084f1c3fe8f01246c9a191b48c7bb756d6652fb',
    bytes: 1322532,
    source: 'user',
    license: 'InsightFace: non-commercial research only',
  },
} satisfies Record<string, ModelFile>;

const RGB_127_128: Normalisation = { order: 'rgb', mean: [127, 127, 127], std: [128, 128, 128] };

export const DETECTORS: Record<DetectorKind, DetectorSpec> = {
  fr_detect: {
    id: 'fr_detect',
    kind: 'fr_detect',
    model: MODEL_FILES.fr_detect,
    input: { width: 320, height: 240 },
    norm: RGB_127_128,
    pad: 127,
    align: 'center',
    landmarks: 'fr_landmark',
    nmsIou: 0.4,
    defaultThreshold: 0.9,
    rotation: { tryBelow: 0.999, wideAbove: 1.0, accept: 0.999, marginLogit: 3 },
  },
  retinaface: {
    id: 'retinaface_mnet025',
    kind: 'retinaface',
    model: MODEL_FILES.retinaface_mnet025,
    input: { width: 640, height: 640 },
    norm: { order: 'bgr', mean: [104, 117, 123], std: [1, 1, 1] },
    pad: 0,
    align: 'topleft',
    landmarks: 'detector',
    nmsIou: 0.4,
    defaultThreshold: 0.9,
  },
  scrfd: {
    id: 'scrfd_500m',
    kind: 'scrfd',
    model: MODEL_FILES.scrfd_500m,
    input: { width: 640, height: 640 },
    norm: { order: 'rgb', mean: [127.5, 127.5, 127.5], std: [128, 128, 128] },
    pad: 0,
    align: 'topleft',
    maxUpscale: 1,
    landmarks: 'detector',
    nmsIou: 0.4,
    defaultThreshold: 0.5,
  },
  yunet: {
    id: 'yunet_2023',
    kind: 'yunet',
    model: MODEL_FILES.yunet,
    input: { width: 640, height: 640 },
    norm: { order: 'bgr', mean: [0, 0, 0], std: [1, 1, 1] },
    pad: 0,
    align: 'topleft',
    landmarks: 'detector',
    nmsIou: 0.3,
    defaultThreshold: 0.9,
  },
};

export const FR_LANDMARK: LandmarkSpec = {
  id: 'fr_landmark',
  model: MODEL_FILES.fr_landmark,
  size: 64,
  norm: { order: 'grey', mean: [0], std: [256] },
};

export const FR_FEATURE: RecognizerSpec = {
  id: 'fr_feature',
  model: MODEL_FILES.fr_feature,
  size: 112,
  norm: RGB_127_128,
  embeddingSize: 512,
  inputName: 'input',
};

export const ATTRIBUTES = {
  ssrnet: {
    id: 'ssrnet',
    kind: 'ssrnet',
    age: MODEL_FILES.fr_age,
    gender: MODEL_FILES.fr_gender,
    size: 64,
    // ImageNet mean/std per tensor channel; the SSR-Net heads separate gender better fed BGR.
    norm: { order: 'bgr', mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375] },
    cropScale: 1.4,
  },
  genderage: {
    id: 'genderage',
    kind: 'genderage',
    model: MODEL_FILES.genderage,
    size: 96,
    norm: { order: 'rgb', mean: [0, 0, 0], std: [1, 1, 1] },
    cropScale: 1.5,
  },
} satisfies Record<string, AttributeSpec>;

export const PACKS: Record<PackName, PackManifest> = {
  default: { name: 'default', detector: DETECTORS.fr_detect, landmarks: FR_LANDMARK, recognizer: FR_FEATURE, attributes: ATTRIBUTES.ssrnet },
  retinaface: { name: 'retinaface', detector: DETECTORS.retinaface, recognizer: FR_FEATURE, attributes: ATTRIBUTES.ssrnet },
  insightface: { name: 'insightface', detector: DETECTORS.scrfd, recognizer: FR_FEATURE, attributes: ATTRIBUTES.genderage },
};

export type PackOverrides = { detector?: DetectorKind; attributes?: keyof typeof ATTRIBUTES };

export function resolvePack(name: PackName, overrides: PackOverrides = {}): PackManifest {
  const base = PACKS[name];
  if (!base) throw new Error(`unknown model pack '${name}' (known: ${Object.keys(PACKS).join(', ')})`);
  const detector = overrides.detector ? DETECTORS[overrides.detector] : base.detector;
  return {
    ...base,
    detector,
    landmarks: detector.landmarks === 'fr_landmark' ? FR_LANDMARK : undefined,
    attributes: overrides.attributes ? ATTRIBUTES[overrides.attributes] : base.attributes,
  };
}

/** Every model file a pack needs, detector first. */
export function packFiles(pack: PackManifest): ModelFile[] {
  const files: ModelFile[] = [pack.detector.model];
  if (pack.landmarks) files.push(pack.landmarks.model);
  files.push(pack.recognizer.model);
  if (pack.attributes.kind === 'ssrnet') files.push(pack.attributes.age, pack.attributes.gender);
  else files.push(pack.attributes.model);
  return files;
}

/**
 * Name, embedding size and the suffix for vector collections. The suffix names the recognizer weights
 * (not the detector): packs that share a recognizer share an embedding space.
 */
export function packInfo(name: PackName): { name: PackName; embeddingSize: number; collectionSuffix: string; recognizer: string } {
  const pack = resolvePack(name);
  return {
    name,
    embeddingSize: pack.recognizer.embeddingSize,
    collectionSuffix: `${pack.recognizer.id}_${pack.recognizer.model.sha256.slice(0, 8)}`,
    recognizer: pack.recognizer.id,
  };
}
