/** Pixel operations: affine warp and region crops with padding, tensor packing, rotation, native resize. */
import sharp from 'sharp';
import type { Affine } from './geometry.js';
import type { RgbImage } from './types.js';

/** Interleaved float RGB (0..255), `width * height * 3`. */
export type FloatRgb = { data: Float32Array; width: number; height: number };

/**
 * Affine warp with bilinear sampling: output pixel (u, v) takes the source at `dstToSrc(u, v)`. Samples
 * outside the image take the pad colour. When one output pixel spans several source pixels, `supersample`
 * (k x k sub-samples, k chosen from the scale, at most `maxSupersample`) avoids aliasing.
 */
export function warpAffine(
  image: RgbImage,
  dstToSrc: Affine,
  outWidth: number,
  outHeight: number,
  pad: number | [number, number, number] = 0,
  maxSupersample = 1,
): FloatRgb {
  const padRgb = typeof pad === 'number' ? [pad, pad, pad] : pad;
  const [ma, mb, mc, md, me, mf] = dstToSrc;
  const srcPerDst = Math.sqrt(Math.abs(ma * me - mb * md));
  const k = Math.max(1, Math.min(maxSupersample, Math.round(srcPerDst)));
  const out = new Float32Array(outWidth * outHeight * 3);
  const { data, width: W, height: H } = image;
  const inv = 1 / (k * k);
  const px = (x: number, y: number, c: number) =>
    x >= 0 && x < W && y >= 0 && y < H ? data[(y * W + x) * 3 + c] : padRgb[c];
  // Sub-sample offsets within an output pixel.
  const offsets = Array.from({ length: k }, (_, i) => (k === 1 ? 0 : (i + 0.5) / k - 0.5));
  const row = W * 3;
  let d = 0;
  for (let v = 0; v < outHeight; v++) {
    for (let u = 0; u < outWidth; u++, d += 3) {
      let R = 0;
      let G = 0;
      let B = 0;
      for (let sv = 0; sv < k; sv++) {
        const dv = v + offsets[sv];
        const rowX = mb * dv + mc;
        const rowY = me * dv + mf;
        for (let su = 0; su < k; su++) {
          const du = u + offsets[su];
          const x = ma * du + rowX;
          const y = md * du + rowY;
          const x0 = Math.floor(x);
          const y0 = Math.floor(y);
          const fx = x - x0;
          const fy = y - y0;
          const w00 = (1 - fx) * (1 - fy);
          const w10 = fx * (1 - fy);
          const w01 = (1 - fx) * fy;
          const w11 = fx * fy;
          if (x0 >= 0 && y0 >= 0 && x0 + 1 < W && y0 + 1 < H) {
            const p = y0 * row + x0 * 3;
            const q = p + row;
            R += w00 * data[p] + w10 * data[p + 3] + w01 * data[q] + w11 * data[q + 3];
            G += w00 * data[p + 1] + w10 * data[p + 4] + w01 * data[q + 1] + w11 * data[q + 4];
            B += w00 * data[p + 2] + w10 * data[p + 5] + w01 * data[q + 2] + w11 * data[q + 5];
          } else {
            R += w00 * px(x0, y0, 0) + w10 * px(x0 + 1, y0, 0) + w01 * px(x0, y0 + 1, 0) + w11 * px(x0 + 1, y0 + 1, 0);
            G += w00 * px(x0, y0, 1) + w10 * px(x0 + 1, y0, 1) + w01 * px(x0, y0 + 1, 1) + w11 * px(x0 + 1, y0 + 1, 1);
            B += w00 * px(x0, y0, 2) + w10 * px(x0 + 1, y0, 2) + w01 * px(x0, y0 + 1, 2) + w11 * px(x0 + 1, y0 + 1, 2);
          }
        }
      }
      out[d] = R * inv;
      out[d + 1] = G * inv;
      out[d + 2] = B * inv;
    }
  }
  return { data: out, width: outWidth, height: outHeight };
}

/**
 * The rectangle (image pixels, may extend past the edges) at outWidth x outHeight by `warpAffine`:
 * bilinear, with up to `maxSupersample`^2 sub-samples per pixel when shrinking: it reads only the
 * samples it needs, not every source pixel of a large face.
 */
export function cropRegion(
  image: RgbImage,
  region: { x: number; y: number; width: number; height: number },
  outWidth: number,
  outHeight: number,
  pad: number | [number, number, number] = 0,
  maxSupersample = 2,
): FloatRgb {
  const sx = region.width / outWidth;
  const sy = region.height / outHeight;
  // Output pixel centres (u + 0.5) onto source pixel centres (x + 0.5).
  const toSource: Affine = [sx, 0, region.x + 0.5 * sx - 0.5, 0, sy, region.y + 0.5 * sy - 0.5];
  return warpAffine(image, toSource, outWidth, outHeight, pad, maxSupersample);
}

/** How a model wants its pixels: channel order and per-channel (x - mean) / std in that order. */
export type Normalisation = { order: 'rgb' | 'bgr' | 'grey'; mean: number[]; std: number[] };

/** Writes planar (NCHW) normalised values into `target` at `offset`; returns the number of values written. */
export function packTensor(pixels: FloatRgb, norm: Normalisation, target: Float32Array, offset = 0): number {
  const n = pixels.width * pixels.height;
  const src = pixels.data;
  if (norm.order === 'grey') {
    const m = norm.mean[0];
    const s = 1 / norm.std[0];
    for (let i = 0; i < n; i++) {
      const g = 0.299 * src[i * 3] + 0.587 * src[i * 3 + 1] + 0.114 * src[i * 3 + 2];
      target[offset + i] = (g - m) * s;
    }
    return n;
  }
  const map = norm.order === 'rgb' ? [0, 1, 2] : [2, 1, 0];
  for (let c = 0; c < 3; c++) {
    const from = map[c];
    const m = norm.mean[c];
    const s = 1 / norm.std[c];
    const base = offset + c * n;
    for (let i = 0; i < n; i++) target[base + i] = (src[i * 3 + from] - m) * s;
  }
  return 3 * n;
}

/** Variance of the 4-neighbour Laplacian of the grey image: a blur signal (low = blurred). */
export function laplacianVariance(pixels: FloatRgb): number {
  const { width: w, height: h, data } = pixels;
  const grey = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) grey[i] = 0.299 * data[i * 3] + 0.587 * data[i * 3 + 1] + 0.114 * data[i * 3 + 2];
  let sum = 0;
  let sumSq = 0;
  let n = 0;
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const i = y * w + x;
      const l = grey[i - 1] + grey[i + 1] + grey[i - w] + grey[i + w] - 4 * grey[i];
      sum += l;
      sumSq += l * l;
      n++;
    }
  }
  if (n === 0) return 0;
  const mean = sum / n;
  return sumSq / n - mean * mean;
}

/** Rotates by `quarterTurns` x 90 degrees clockwise. */
export function rotateImage(image: RgbImage, quarterTurns: number): RgbImage {
  const k = ((quarterTurns % 4) + 4) % 4;
  if (k === 0) return image;
  const { width: W, height: H, data } = image;
  const w = k === 2 ? W : H;
  const h = k === 2 ? H : W;
  const out = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let nx: number;
      let ny: number;
      if (k === 1) {
        nx = H - 1 - y;
        ny = x;
      } else if (k === 2) {
        nx = W - 1 - x;
        ny = H - 1 - y;
      } else {
        nx = y;
        ny = W - 1 - x;
      }
      const s = (y * W + x) * 3;
      const d = (ny * w + nx) * 3;
      out[d] = data[s];
      out[d + 1] = data[s + 1];
      out[d + 2] = data[s + 2];
    }
  }
  return { data: out, width: w, height: h };
}

/**
 * Maps a continuous point of an image rotated `quarterTurns` clockwise (see rotateImage) back to the
 * original image of size width x height.
 */
export function unrotatePoint(x: number, y: number, quarterTurns: number, width: number, height: number): [number, number] {
  const k = ((quarterTurns % 4) + 4) % 4;
  if (k === 1) return [y, height - x];
  if (k === 2) return [width - x, height - y];
  if (k === 3) return [width - y, x];
  return [x, y];
}

/**
 * Resizes with sharp (libvips, native, off the event loop): far cheaper than a JS pass over a whole
 * large image. The result is `outWidth x outHeight` 8-bit RGB.
 */
export async function resizeImage(image: RgbImage, outWidth: number, outHeight: number): Promise<RgbImage> {
  if (outWidth === image.width && outHeight === image.height) return image;
  const data = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(outWidth, outHeight, { fit: 'fill', kernel: 'mitchell' })
    .raw()
    .toBuffer();
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: outWidth, height: outHeight };
}

/**
 * `content` placed at integer (x, y) on a canvas of the pad colour (0..255), written straight into a
 * planar normalised tensor (as `packTensor` would pack the canvas). Content outside the canvas is cut.
 */
export function packOnCanvas(
  content: RgbImage,
  canvas: { width: number; height: number; x: number; y: number; pad: number },
  norm: Normalisation,
  target: Float32Array,
): void {
  const { width: cw, height: ch, x, y, pad } = canvas;
  const n = cw * ch;
  const grey = norm.order === 'grey';
  const planes = grey ? 1 : 3;
  const src = content.data;
  const x0 = Math.max(0, x);
  const x1 = Math.min(cw, x + content.width);
  const y0 = Math.max(0, y);
  const y1 = Math.min(ch, y + content.height);
  for (let c = 0; c < planes; c++) {
    const m = norm.mean[c];
    const inv = 1 / norm.std[c];
    const base = c * n;
    target.fill((pad - m) * inv, base, base + n);
    const from = norm.order === 'bgr' ? 2 - c : c;
    for (let cy = y0; cy < y1; cy++) {
      let s = ((cy - y) * content.width + (x0 - x)) * 3;
      const rowEnd = base + cy * cw + x1;
      if (grey) {
        for (let d = base + cy * cw + x0; d < rowEnd; d++, s += 3) {
          target[d] = (0.299 * src[s] + 0.587 * src[s + 1] + 0.114 * src[s + 2] - m) * inv;
        }
      } else {
        for (let d = base + cy * cw + x0, t = s + from; d < rowEnd; d++, t += 3) target[d] = (src[t] - m) * inv;
      }
    }
  }
}
