/**
 * Embedded ICC profiles. Converting through a profile costs libvips more than decoding the JPEG
 * (~12 ns per pixel here, a 3x slower decode). Profiles with sRGB's colorants are skipped: in
 * practice they are sRGB itself or a compact copy of it (their tone curves are not compared), and
 * the transform returns the pixels as stored. Wider gamuts (Adobe RGB, ProPhoto, Display P3) are
 * still converted: read as sRGB they shift colours enough to cost recognition accuracy.
 */

/** sRGB's red, green and blue colorants adapted to D50, as an ICC profile stores them (rXYZ, gXYZ, bXYZ). */
const SRGB_COLORANTS: Record<string, [number, number, number]> = {
  rXYZ: [0.4361, 0.2225, 0.0139],
  gXYZ: [0.3851, 0.7169, 0.0971],
  bXYZ: [0.1431, 0.0606, 0.7141],
};
const TOLERANCE = 0.005;

function readColorant(icc: Buffer, offset: number, size: number): [number, number, number] | undefined {
  // XYZType: 'XYZ ', 4 reserved bytes, then X, Y, Z as s15Fixed16.
  if (size < 20 || offset + 20 > icc.length || icc.toString('latin1', offset, offset + 4) !== 'XYZ ') return undefined;
  return [0, 1, 2].map((i) => icc.readInt32BE(offset + 8 + i * 4) / 65536) as [number, number, number];
}

/** True when the profile is an RGB matrix profile whose colorants are sRGB's. False for anything unreadable. */
export function hasSrgbColorants(icc: Buffer): boolean {
  if (icc.length < 132 || icc.toString('latin1', 16, 20) !== 'RGB ') return false;
  const count = icc.readUInt32BE(128);
  if (132 + count * 12 > icc.length) return false;
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const entry = 132 + i * 12;
    const signature = icc.toString('latin1', entry, entry + 4);
    const expected = SRGB_COLORANTS[signature];
    if (!expected) continue;
    const xyz = readColorant(icc, icc.readUInt32BE(entry + 4), icc.readUInt32BE(entry + 8));
    if (!xyz || xyz.some((v, j) => Math.abs(v - expected[j]) > TOLERANCE)) return false;
    seen.add(signature);
  }
  return seen.size === 3;
}
