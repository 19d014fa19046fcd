import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ImageError } from '../../src/imaging/errors.js';
import { isSrgbInEffect } from '../../src/imaging/icc.js';
import { prepareImage, readImageHeader } from '../../src/imaging/prepare.js';
import { sniffImageFormat } from '../../src/imaging/sniff.js';

const LIMITS = { maxBytes: 10_000_000, maxPixels: 50_000_000, maxSide: 1280 };

function solid(width: number, height: number) {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 100, b: 50 } } });
}

async function expectImageError(promise: Promise<unknown>, code: string) {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ImageError);
  expect((error as ImageError).code).toBe(code);
}

describe('sniffImageFormat', () => {
  it('recognises each supported format from generated files', async () => {
    expect(sniffImageFormat(await solid(8, 8).jpeg().toBuffer())).toBe('jpeg');
    expect(sniffImageFormat(await solid(8, 8).png().toBuffer())).toBe('png');
    expect(sniffImageFormat(await solid(8, 8).webp().toBuffer())).toBe('webp');
    expect(sniffImageFormat(await solid(8, 8).gif().toBuffer())).toBe('gif');
    expect(sniffImageFormat(await solid(8, 8).tiff().toBuffer())).toBe('tiff');
    expect(sniffImageFormat(await solid(8, 8).avif().toBuffer())).toBe('avif');
  });

  it('recognises HEIF brands and big-endian TIFF from headers', () => {
    const heic = Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from('ftypheic'), Buffer.alloc(4), Buffer.from('mif1heic')]);
    expect(sniffImageFormat(heic)).toBe('heif');
    expect(sniffImageFormat(Buffer.from([0x4d, 0x4d, 0x00, 0x2a, 0, 0, 0, 8]))).toBe('tiff');
  });

  it('rejects text, SVG, PGM, random and short input', () => {
    expect(sniffImageFormat(Buffer.from('hello, this is not an image'))).toBeNull();
    expect(sniffImageFormat(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"></svg>'))).toBeNull();
    expect(sniffImageFormat(Buffer.from('P5\n2 2\n255\n\x00\x01\x02\x03'))).toBeNull();
    expect(sniffImageFormat(Buffer.from([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4]))).toBeNull();
    expect(sniffImageFormat(new Uint8Array([0xff, 0xd8]))).toBeNull();
    expect(sniffImageFormat(new Uint8Array(0))).toBeNull();
  });
});

describe('prepareImage errors', () => {
  it('empty: zero bytes', async () => {
    await expectImageError(prepareImage(Buffer.alloc(0), LIMITS), 'empty');
  });

  it('truncated: a JPEG cut in half', async () => {
    const noisy = Buffer.alloc(200 * 200 * 3);
    for (let i = 0; i < noisy.length; i++) noisy[i] = (i * 7919) % 251;
    const jpeg = await sharp(noisy, { raw: { width: 200, height: 200, channels: 3 } }).jpeg().toBuffer();
    await expectImageError(prepareImage(jpeg.subarray(0, Math.floor(jpeg.length / 2)), LIMITS), 'truncated');
  });

  it('truncated: a PNG missing its end', async () => {
    const png = await solid(300, 200).png().toBuffer();
    await expectImageError(prepareImage(png.subarray(0, png.length - 20), LIMITS), 'truncated');
  });

  it('unsupported_format: random bytes and a text file', async () => {
    const random = Buffer.alloc(4096);
    for (let i = 0; i < random.length; i++) random[i] = (i * 131 + 17) % 256;
    await expectImageError(prepareImage(random, LIMITS), 'unsupported_format');
    await expectImageError(prepareImage(Buffer.from('name,visits\nalice,3\n'), LIMITS), 'unsupported_format');
  });

  it('too_large: a PNG whose header claims 100000x100000 pixels is refused before decoding', async () => {
    const png = Buffer.from(await solid(16, 16).png().toBuffer());
    png.writeUInt32BE(100_000, 16);
    png.writeUInt32BE(100_000, 20);
    await expectImageError(prepareImage(png, LIMITS), 'too_large');
    await expectImageError(readImageHeader(png, LIMITS), 'too_large');
  });

  it('too_large: more bytes than the limit', async () => {
    const jpeg = await solid(64, 64).jpeg().toBuffer();
    await expectImageError(prepareImage(jpeg, { ...LIMITS, maxBytes: 100 }), 'too_large');
  });
});

describe('prepareImage', () => {
  it('auto-orients from EXIF, downscales to maxSide and reports the scale', async () => {
    // Stored 400x200, orientation 6 (rotate 90 clockwise) -> displayed 200x400.
    const jpeg = await solid(400, 200).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const header = await readImageHeader(jpeg);
    expect(header).toMatchObject({ format: 'jpeg', width: 200, height: 400 });
    const p = await prepareImage(jpeg, { ...LIMITS, maxSide: 100 });
    expect(p.originalWidth).toBe(200);
    expect(p.originalHeight).toBe(400);
    expect(p.image.width).toBe(50);
    expect(p.image.height).toBe(100);
    expect(p.scale).toBeCloseTo(0.25, 6);
    expect(p.image.data.length).toBe(50 * 100 * 3);
  });

  it('never upscales, and turns grey and RGBA into RGB', async () => {
    const grey = await sharp({ create: { width: 30, height: 20, channels: 3, background: '#808080' } }).greyscale().png().toBuffer();
    const g = await prepareImage(grey, LIMITS);
    expect([g.image.width, g.image.height, g.scale]).toEqual([30, 20, 1]);
    expect(Array.from(g.image.data.slice(0, 3))).toEqual([128, 128, 128]);
    const rgba = await sharp({ create: { width: 10, height: 10, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 1 } } }).png().toBuffer();
    const r = await prepareImage(rgba, LIMITS);
    expect(Array.from(r.image.data.slice(0, 3))).toEqual([255, 0, 0]);
  });

  it('reads EXIF DateTimeOriginal with and without an offset', async () => {
    const plain = await solid(32, 32)
      .jpeg()
      .withExif({ IFD2: { DateTimeOriginal: '2024:03:05 14:15:16' } })
      .toBuffer();
    const h = await readImageHeader(plain);
    expect(h.exifCapturedAtLocal).toBe('2024-03-05T14:15:16');
    expect(h.exifCapturedAt?.toISOString()).toBe('2024-03-05T14:15:16.000Z');
    const zoned = await solid(32, 32)
      .jpeg()
      .withExif({ IFD2: { DateTimeOriginal: '2024:03:05 14:15:16', OffsetTimeOriginal: '+02:00' } })
      .toBuffer();
    expect((await prepareImage(zoned, LIMITS)).exifCapturedAt?.toISOString()).toBe('2024-03-05T12:15:16.000Z');
    expect((await readImageHeader(await solid(8, 8).png().toBuffer())).exifCapturedAt).toBeUndefined();
  });

  it('greyscale and denoise are options', async () => {
    const jpeg = await solid(20, 20).jpeg().toBuffer();
    const p = await prepareImage(jpeg, LIMITS, { greyscale: true, denoise: true });
    const [r, g, b] = p.image.data;
    expect(r).toBe(g);
    expect(g).toBe(b);
  });
});

/** sRGB's tone curve as an ICC parametricCurveType of function 3 (g, a, b, c, d). */
const SRGB_CURVE = para(3, [2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045]);

function para(kind: number, params: number[]): Buffer {
  const tag = Buffer.alloc(12 + 4 * params.length);
  tag.write('para', 0, 'latin1');
  tag.writeUInt16BE(kind, 8);
  params.forEach((v, i) => tag.writeInt32BE(Math.round(v * 65536), 12 + 4 * i));
  return tag;
}

function curv(entries: number[]): Buffer {
  const tag = Buffer.alloc(12 + 2 * entries.length);
  tag.write('curv', 0, 'latin1');
  tag.writeUInt32BE(entries.length, 8);
  entries.forEach((v, i) => tag.writeUInt16BE(v, 12 + 2 * i));
  return tag;
}

/** A minimal ICC header and tag table: rXYZ, gXYZ and bXYZ colorants and one tone curve shared by rTRC, gTRC and bTRC. */
function iccWithColorants(colorants: [number, number, number][], space = 'RGB ', toneCurve: Buffer = SRGB_CURVE): Buffer {
  const xyz = colorants.map((c) => {
    const tag = Buffer.alloc(20);
    tag.write('XYZ ', 0, 'latin1');
    c.forEach((v, j) => tag.writeInt32BE(Math.round(v * 65536), 8 + j * 4));
    return tag;
  });
  const tags: [string, number][] = [['rXYZ', 0], ['gXYZ', 1], ['bXYZ', 2], ['rTRC', 3], ['gTRC', 3], ['bTRC', 3]];
  const bodies = [...xyz, toneCurve];
  const tableEnd = 132 + tags.length * 12;
  const offsets = bodies.map((_, i) => tableEnd + bodies.slice(0, i).reduce((sum, b) => sum + b.length, 0));
  const header = Buffer.alloc(tableEnd);
  header.write(space, 16, 'latin1');
  header.writeUInt32BE(tags.length, 128);
  tags.forEach(([signature, body], i) => {
    header.write(signature, 132 + i * 12, 'latin1');
    header.writeUInt32BE(offsets[body], 132 + i * 12 + 4);
    header.writeUInt32BE(bodies[body].length, 132 + i * 12 + 8);
  });
  return Buffer.concat([header, ...bodies]);
}

describe('embedded colour profiles', () => {
  const SRGB: [number, number, number][] = [
    [0.4361, 0.2225, 0.0139],
    [0.3851, 0.7169, 0.0971],
    [0.1431, 0.0606, 0.7141],
  ];
  const ADOBE_RGB: [number, number, number][] = [
    [0.6097, 0.3111, 0.0195],
    [0.2053, 0.6257, 0.0609],
    [0.1492, 0.0632, 0.7446],
  ];

  it('knows sRGB colorants from wider gamuts, other spaces and damaged profiles', () => {
    expect(isSrgbInEffect(iccWithColorants(SRGB))).toBe(true);
    expect(isSrgbInEffect(iccWithColorants(ADOBE_RGB))).toBe(false);
    expect(isSrgbInEffect(iccWithColorants(SRGB, 'CMYK'))).toBe(false);
    expect(isSrgbInEffect(iccWithColorants(SRGB).subarray(0, 150))).toBe(false);
    expect(isSrgbInEffect(Buffer.alloc(10))).toBe(false);
  });

  it('knows sRGB tone curves, in every encoding, from other ones', () => {
    const sampled = curv(Array.from({ length: 1024 }, (_, i) => {
      const v = i / 1023;
      return Math.round(65535 * (v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
    }));
    expect(isSrgbInEffect(iccWithColorants(SRGB, 'RGB ', sampled))).toBe(true);
    // A plain 2.2 gamma (u8Fixed8: 563 / 256) is sRGB to within a hundredth in linear light.
    expect(isSrgbInEffect(iccWithColorants(SRGB, 'RGB ', curv([563])))).toBe(true);
    expect(isSrgbInEffect(iccWithColorants(SRGB, 'RGB ', para(0, [2.2])))).toBe(true);
    // Linear light (an empty curve), gamma 1.8 and a truncated curve are converted.
    expect(isSrgbInEffect(iccWithColorants(SRGB, 'RGB ', curv([])))).toBe(false);
    expect(isSrgbInEffect(iccWithColorants(SRGB, 'RGB ', para(0, [1.8])))).toBe(false);
    expect(isSrgbInEffect(iccWithColorants(SRGB, 'RGB ', SRGB_CURVE.subarray(0, 20)))).toBe(false);
  });

  it('reads the profiles sharp embeds: sRGB as sRGB, Display P3 as wider', async () => {
    const srgb = await sharp(await solid(8, 8).withIccProfile('srgb').jpeg().toBuffer()).metadata();
    const p3 = await sharp(await solid(8, 8).withIccProfile('p3').jpeg().toBuffer()).metadata();
    expect(isSrgbInEffect(srgb.icc!)).toBe(true);
    expect(isSrgbInEffect(p3.icc!)).toBe(false);
  });

  it('converts a Display P3 image back to the sRGB colours it was made from', async () => {
    const red = sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 255, g: 0, b: 0 } } });
    const p3 = await red.withIccProfile('p3').png().toBuffer();
    const stored = await sharp(p3, { ignoreIcc: true }).raw().toBuffer();
    // As stored, the red is a P3 value, visibly off sRGB red.
    expect(stored[1]).toBeGreaterThan(20);
    const { image } = await prepareImage(p3, LIMITS);
    expect(Math.abs(image.data[0] - 255) + image.data[1] + image.data[2]).toBeLessThan(6);
  });
});
