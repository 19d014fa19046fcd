/**
 * A labelled photo folder with MANIFEST.tsv (columns path, identity, …; identity `none` = no face,
 * `group` = several people, `unlabelled` = one unknown person). Photos are read in place.
 */
import fs from 'node:fs';
import path from 'node:path';

export type ManifestRow = { path: string; identity: string; folder: string };

/** ../shared/faces beside the project, or under FACEPERKS_SHARED_DIR. */
export function defaultDataset(): string {
  const shared = process.env.FACEPERKS_SHARED_DIR ?? path.resolve(import.meta.dirname, '../../shared');
  return path.join(shared, 'faces');
}

/** The manifest's rows sorted by path; `folder` is the path's top-level folder. */
export function readManifest(dataset: string): ManifestRow[] {
  const manifest = path.join(dataset, 'MANIFEST.tsv');
  if (!fs.existsSync(manifest)) throw new Error(`no MANIFEST.tsv in ${dataset}`);
  const lines = fs.readFileSync(manifest, 'utf8').split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines[0].split('\t');
  const pi = header.indexOf('path');
  const ii = header.indexOf('identity');
  if (pi < 0 || ii < 0) throw new Error(`${manifest} needs columns path and identity`);
  return lines
    .slice(1)
    .map((l) => l.split('\t'))
    .map((c) => ({ path: c[pi], identity: c[ii], folder: c[pi].split('/')[0] }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

const IMAGE_FILE = /\.(jpe?g|png|webp|gif|tiff?|avif)$/i;

/**
 * The photos of a folder, sorted: the manifest's paths when it has one, else every image file
 * under it (the benchmarks run on any folder of photos; only the evaluations need labels).
 */
export function listPhotos(dataset: string): string[] {
  if (fs.existsSync(path.join(dataset, 'MANIFEST.tsv'))) return readManifest(dataset).map((row) => path.join(dataset, row.path));
  return fs
    .readdirSync(dataset, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && IMAGE_FILE.test(entry.name))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}

const SPECIAL = new Set(['none', 'group', 'unlabelled']);

/** One known person per photo. */
export const isLabelled = (row: { identity: string }) => !SPECIAL.has(row.identity);

/** mulberry32: a small seeded generator. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The items in an order fixed by `seed`, so that a rerun uploads in the same order. */
export function shuffle<T>(items: T[], seed: number): T[] {
  const next = random(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * The evaluations' split of a manifest: every other identity with two or more photos (in name
 * order) is to be enrolled as a member; `photosOf` holds each labelled identity's photos.
 */
export function memberSplit(rows: ManifestRow[]): { photosOf: Map<string, ManifestRow[]>; memberIdentities: string[] } {
  const photosOf = new Map<string, ManifestRow[]>();
  for (const row of rows.filter(isLabelled)) photosOf.set(row.identity, [...(photosOf.get(row.identity) ?? []), row]);
  const repeated = [...photosOf.keys()].filter((identity) => photosOf.get(identity)!.length >= 2).sort();
  return { photosOf, memberIdentities: repeated.filter((_, i) => i % 2 === 0) };
}
