/**
 * Embedded ICC profiles. Converting through a profile costs libvips more than decoding the JPEG
 * (~12 ns per pixel here, a 3x slower decode). Profiles that are sRGB in effect are skipped: sRGB's
 * colorants and tone curves close to sRGB's (sRGB itself, its compact copies, a plain 2.2 gamma), for
 * which the transform returns the pixels as stored. Wider gamuts (Adobe RGB, ProPhoto, Display P3)
 * and other tone curves (a linear-light encoding, say) are still converted: read as sRGB they shift
 * colours or brightness enough to cost recognition accuracy.
 */

/** sRGB's red, green and blue colorants adapted to D50, as an ICC profile stores them (rXYZ, gXYZ, bXYZ). */
const SRGB_COLORANTS: Record<string, [number, number, number]> = {
  rXYZ: [0.4361, 0.2225, 0.0139],
  gXYZ: [0.3851, 0.7169, 0.0971],
  bXYZ: [0.1431, 0.0606, 0.7141],
};
const COLORANT_TOLERANCE = 0.005;
const TONE_CURVES = ['rTRC', 'gTRC', 'bTRC'];
/** Largest difference in linear light from sRGB's curve over 0..1: a 2.2 gamma differs by 0.009, 2.0 and 2.4 by 0.04 and 0.025. */
const CURVE_TOLERANCE = 0.015;
const CURVE_SAMPLES = 64;

type Tag = { offset: number; size: number };

/** sRGB's tone curve (IEC 61966-2-1): encoded value -> linear light. */
function srgbToLinear(v: number): number {
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
}

function readColorant(icc: Buffer, { offset, size }: Tag): [number, number, number] | undefined {
  // XYZType: 'XYZ ', 4 reserved bytes, then X, Y, Z as s15Fixed16.
  if (size < 20 || offset + 20 > icc.length || icc.toString('latin1', offset, offset + 4) !== 'XYZ ') return undefined;
  return [0, 1, 2].map((i) => icc.readInt32BE(offset + 8 + i * 4) / 65536) as [number, number, number];
}

/** Parameters per parametricCurveType function (ICC.1:2010, table 65). */
const PARAMETER_COUNTS = [1, 3, 4, 5, 7];

/** A tone curve (curveType or parametricCurveType) as a function on 0..1, or undefined if unreadable. */
function readToneCurve(icc: Buffer, { offset, size }: Tag): ((x: number) => number) | undefined {
  if (size < 12 || offset + 12 > icc.length) return undefined;
  const type = icc.toString('latin1', offset, offset + 4);
  if (type === 'curv') {
    const n = icc.readUInt32BE(offset + 8);
    if (12 + 2 * n > size || offset + 12 + 2 * n > icc.length) return undefined;
    if (n === 0) return (x) => x;
    const entry = (i: number) => icc.readUInt16BE(offset + 12 + 2 * i);
    if (n === 1) {
      const gamma = entry(0) / 256;
      return (x) => x ** gamma;
    }
    return (x) => {
      const at = x * (n - 1);
      const i = Math.min(n - 2, Math.floor(at));
      return (entry(i) + (entry(i + 1) - entry(i)) * (at - i)) / 65535;
    };
  }
  if (type === 'para') {
    const kind = icc.readUInt16BE(offset + 8);
    const count = PARAMETER_COUNTS[kind];
    if (count === undefined || 12 + 4 * count > size || offset + 12 + 4 * count > icc.length) return undefined;
    const [g, a = 1, b = 0, c = 0, d = 0, e = 0, f = 0] = Array.from({ length: count }, (_, i) => icc.readInt32BE(offset + 12 + 4 * i) / 65536);
    const power = (x: number) => Math.max(0, a * x + b) ** g;
    if (kind === 0) return (x) => x ** g;
    if (kind === 1) return (x) => (x >= -b / a ? power(x) : 0);
    if (kind === 2) return (x) => (x >= -b / a ? power(x) + c : c);
    if (kind === 3) return (x) => (x >= d ? power(x) : c * x);
    return (x) => (x >= d ? power(x) + e : c * x + f);
  }
  return undefined;
}

function isSrgbToneCurve(curve: (x: number) => number): boolean {
  for (let i = 0; i <= CURVE_SAMPLES; i++) {
    const x = i / CURVE_SAMPLES;
    if (!(Math.abs(curve(x) - srgbToLinear(x)) <= CURVE_TOLERANCE)) return false;
  }
  return true;
}

/** True when the profile is an RGB matrix profile with sRGB's colorants and tone curves. False for anything unreadable. */
export function isSrgbInEffect(icc: Buffer): boolean {
  if (icc.length < 132 || icc.toString('latin1', 16, 20) !== 'RGB ') return false;
  const count = icc.readUInt32BE(128);
  if (132 + count * 12 > icc.length) return false;
  const tags = new Map<string, Tag>();
  for (let i = 0; i < count; i++) {
    const entry = 132 + i * 12;
    tags.set(icc.toString('latin1', entry, entry + 4), { offset: icc.readUInt32BE(entry + 4), size: icc.readUInt32BE(entry + 8) });
  }
  for (const [signature, expected] of Object.entries(SRGB_COLORANTS)) {
    const tag = tags.get(signature);
    const xyz = tag && readColorant(icc, tag);
    if (!xyz || xyz.some((v, j) => Math.abs(v - expected[j]) > COLORANT_TOLERANCE)) return false;
  }
  return TONE_CURVES.every((signature) => {
    const tag = tags.get(signature);
    const curve = tag && readToneCurve(icc, tag);
    return curve !== undefined && isSrgbToneCurve(curve);
  });
}
