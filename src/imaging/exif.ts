/** Minimal EXIF reader: DateTimeOriginal (and its offset) from the TIFF block sharp exposes as `metadata.exif`. */

export type ExifCapture = {
  /** The instant, using OffsetTimeOriginal when present, else the wall-clock time read as UTC. */
  date: Date;
  /** Wall-clock time as written by the camera, ISO-8601 without zone: "2017-11-01T12:51:52". */
  local: string;
  /** "+02:00" when the file records OffsetTimeOriginal. */
  offset?: string;
};

const TAG_EXIF_IFD = 0x8769;
const TAG_DATETIME_ORIGINAL = 0x9003;
const TAG_OFFSET_TIME_ORIGINAL = 0x9011;

export function readExifCapture(exif: Buffer | undefined): ExifCapture | undefined {
  if (!exif || exif.length < 14) return undefined;
  try {
    let base = 0;
    if (exif.toString('latin1', 0, 4) === 'Exif') base = 6;
    const order = exif.toString('latin1', base, base + 2);
    const le = order === 'II';
    if (!le && order !== 'MM') return undefined;
    const u16 = (o: number) => (le ? exif.readUInt16LE(base + o) : exif.readUInt16BE(base + o));
    const u32 = (o: number) => (le ? exif.readUInt32LE(base + o) : exif.readUInt32BE(base + o));
    const inBounds = (o: number, n: number) => o >= 0 && base + o + n <= exif.length;

    const readIfd = (offset: number): Map<number, { type: number; count: number; valueOffset: number }> => {
      const tags = new Map<number, { type: number; count: number; valueOffset: number }>();
      if (!inBounds(offset, 2)) return tags;
      const n = u16(offset);
      for (let i = 0; i < n; i++) {
        const entry = offset + 2 + i * 12;
        if (!inBounds(entry, 12)) break;
        tags.set(u16(entry), { type: u16(entry + 2), count: u32(entry + 4), valueOffset: entry + 8 });
      }
      return tags;
    };
    const asciiValue = (t: { type: number; count: number; valueOffset: number } | undefined): string | undefined => {
      if (!t || t.type !== 2) return undefined;
      const at = t.count <= 4 ? t.valueOffset : u32(t.valueOffset);
      if (!inBounds(at, t.count)) return undefined;
      return exif.toString('latin1', base + at, base + at + t.count).replace(/\0.*$/s, '').trim();
    };

    const ifd0 = readIfd(u32(4));
    const exifPointer = ifd0.get(TAG_EXIF_IFD);
    const exifIfd = exifPointer ? readIfd(u32(exifPointer.valueOffset)) : new Map();
    const text = asciiValue(exifIfd.get(TAG_DATETIME_ORIGINAL));
    const offsetText = asciiValue(exifIfd.get(TAG_OFFSET_TIME_ORIGINAL));
    const m = text?.match(/^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})/);
    if (!m) return undefined;
    const local = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}`;
    const offset = offsetText && /^[+-]\d{2}:\d{2}$/.test(offsetText) ? offsetText : undefined;
    const date = new Date(`${local}${offset ?? 'Z'}`);
    if (Number.isNaN(date.getTime()) || Number(m[1]) < 1970) return undefined;
    return { date, local, offset };
  } catch {
    return undefined;
  }
}
