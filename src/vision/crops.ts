/** Face crops kept for merchants that opt in (src/services/face-crops.ts): the aligned face as a small JPEG. */
import sharp from 'sharp';
import { alignFace } from './describer.js';
import type { Landmarks5, RgbImage } from './types.js';

export const FACE_CROP_SIZE = 112;

/** The face aligned as the recognizer sees it (eyes and mouth at fixed places), 112x112 JPEG. */
export async function encodeFaceCrop(image: RgbImage, landmarks: Landmarks5): Promise<Buffer> {
  const aligned = alignFace(image, landmarks, FACE_CROP_SIZE);
  const pixels = Uint8Array.from(aligned.data, (value) => Math.max(0, Math.min(255, Math.round(value))));
  return sharp(pixels, { raw: { width: FACE_CROP_SIZE, height: FACE_CROP_SIZE, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
}
