/**
 * Bytes -> oriented RGB work image with sharp. Sniffs the real format, guards against decompression
 * bombs from the header before decoding, and turns every failure into a typed, permanent ImageError.
 */
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import type { RgbImage } from '../vision/types.js';
import { ImageError } from './errors.js';
import { readExifCapture } from './exif.js';
import { isSrgbInEffect } from './icc.js';
import { sniffImageFormat, type ImageFormat } from './sniff.js';

export type ImageLimits = {
  /** Largest accepted file in bytes. */
  maxBytes: number;
  /** Largest accepted width x height, read from the header before decoding. */
  maxPixels: number;
  /** Longest side of the work image; larger images are downscaled (never upscaled). */
  maxSide: number;
};

export type PrepareOptions = {
  /** Convert to grey (kept as 3 equal channels). Only for models that want it. */
  greyscale?: boolean;
  /** 3x3 median filter. Only for models that want it. */
  denoise?: boolean;
};

export type ImageHeader = {
  format: ImageFormat;
  /** Dimensions after EXIF orientation. */
  width: number;
  height: number;
  /** EXIF DateTimeOriginal: the zone from OffsetTimeOriginal when recorded, else the wall-clock time read as UTC. */
  exifCapturedAt?: Date;
  /** EXIF DateTimeOriginal as the camera wrote it, ISO-8601 without zone (interpret in the store's timezone). */
  exifCapturedAtLocal?: string;
};

export type PreparedImage = ImageHeader & {
  image: RgbImage;
  originalWidth: number;
  originalHeight: number;
  /** Work-image pixels per original pixel (<= 1). Divide work coordinates by it to get original pixels. */
  scale: number;
};

/** The service's limits, from its configuration. */
export function imageLimits(config: { MAX_UPLOAD_BYTES: number; MAX_IMAGE_PIXELS: number; WORK_IMAGE_MAX_SIDE: number }): ImageLimits {
  return { maxBytes: config.MAX_UPLOAD_BYTES, maxPixels: config.MAX_IMAGE_PIXELS, maxSide: config.WORK_IMAGE_MAX_SIDE };
}

function checkBytes(bytes: Buffer, maxBytes?: number): ImageFormat {
  if (bytes.length === 0) throw new ImageError('empty', 'the file is empty');
  if (maxBytes !== undefined && bytes.length > maxBytes) {
    throw new ImageError('too_large', `the file has ${bytes.length} bytes, more than the limit of ${maxBytes}`);
  }
  const format = sniffImageFormat(bytes.subarray(0, 64));
  if (!format) throw new ImageError('unsupported_format', 'not a supported image (jpeg, png, webp, gif, tiff, avif/heif)');
  return format;
}

function decodeError(format: ImageFormat, err: unknown): ImageError {
  const message = err instanceof Error ? err.message : String(err);
  if (/pixel limit|exceeds pixel|too large/i.test(message)) {
    return new ImageError('too_large', `the ${format} image is too large to decode: ${message}`);
  }
  if (/unsupported|not built|no decoder|compression format|bad seek|not a known|not supported/i.test(message)) {
    return new ImageError('unsupported_format', `the ${format} file uses a variant that cannot be decoded: ${firstLine(message)}`);
  }
  return new ImageError('truncated', `the ${format} data is truncated or corrupt: ${firstLine(message)}`);
}

function firstLine(s: string): string {
  return s.split('\n')[0].slice(0, 200);
}

async function readMetadata(bytes: Buffer, format: ImageFormat, maxPixels?: number) {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw decodeError(format, err);
  }
  if (!meta.width || !meta.height) throw new ImageError('truncated', `the ${format} header has no dimensions`);
  if (maxPixels !== undefined && meta.width * meta.height > maxPixels) {
    throw new ImageError(
      'too_large',
      `the image is ${meta.width}x${meta.height} pixels, more than the limit of ${maxPixels} pixels`,
    );
  }
  const oriented = meta.autoOrient ?? { width: meta.width, height: meta.height };
  const exif = readExifCapture(meta.exif);
  const header: ImageHeader = { format, width: oriented.width, height: oriented.height };
  if (exif) {
    header.exifCapturedAt = exif.date;
    header.exifCapturedAtLocal = exif.local;
  }
  return { header, hasAlpha: meta.hasAlpha === true, convertProfile: meta.icc !== undefined && !isSrgbInEffect(meta.icc) };
}

/** Format, oriented size and EXIF capture time from the header only (no pixel decode). Cheap enough for intake. */
export async function readImageHeader(bytes: Buffer, limits?: Partial<ImageLimits>): Promise<ImageHeader> {
  const format = checkBytes(bytes, limits?.maxBytes);
  return (await readMetadata(bytes, format, limits?.maxPixels)).header;
}

/** Decodes, auto-orients and downscales to `limits.maxSide`. Throws ImageError only for bad input. */
export async function prepareImage(bytes: Buffer, limits: ImageLimits, options: PrepareOptions = {}): Promise<PreparedImage> {
  const format = checkBytes(bytes, limits.maxBytes);
  const { header, hasAlpha, convertProfile } = await readMetadata(bytes, format, limits.maxPixels);
  let pipeline = sharp(bytes, { failOn: 'truncated', limitInputPixels: limits.maxPixels, autoOrient: true, pages: 1, ignoreIcc: !convertProfile });
  const longest = Math.max(header.width, header.height);
  if (longest > limits.maxSide) {
    pipeline = pipeline.resize({ width: limits.maxSide, height: limits.maxSide, fit: 'inside', withoutEnlargement: true });
  }
  if (options.denoise) pipeline = pipeline.median(3);
  if (options.greyscale) pipeline = pipeline.greyscale();
  // Flattening is a pass over every pixel: only images with alpha need it.
  if (hasAlpha) pipeline = pipeline.flatten({ background: { r: 255, g: 255, b: 255 } });
  pipeline = pipeline.toColourspace(options.greyscale ? 'b-w' : 'srgb');
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await pipeline.raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw decodeError(format, err);
  }
  const { width, height, channels } = raw.info;
  const image: RgbImage = { data: toRgb(raw.data, width * height, channels), width, height };
  return {
    ...header,
    image,
    originalWidth: header.width,
    originalHeight: header.height,
    scale: width / header.width,
  };
}

function toRgb(data: Buffer, pixels: number, channels: number): Uint8Array {
  if (channels === 3) return new Uint8Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const s = i * channels;
    const grey = channels < 3;
    out[i * 3] = data[s];
    out[i * 3 + 1] = grey ? data[s] : data[s + 1];
    out[i * 3 + 2] = grey ? data[s] : data[s + 2];
  }
  return out;
}
