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
