/** Finding image files (recursive, by extension) and hashing them (streaming sha256). */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.heic']);

export type LocalFile = {
  path: string;
  /** Path as shown to the user: relative to the working directory when inside it. */
  display: string;
  size: number;
  mtime: Date;
};

export function isImageName(name: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase());
}

/**
 * Every image file under the given directories (recursively, hidden entries skipped, symlinks not
 * followed into directories), plus files named explicitly (whatever their extension: the user
 * asked for them). Sorted by path within each argument; a path named twice is listed once.
 */
export async function findFiles(inputs: string[], cwd = process.cwd()): Promise<{ files: LocalFile[]; missing: string[] }> {
  const files: LocalFile[] = [];
  const missing: string[] = [];
  const seen = new Set<string>();
  const add = (full: string, stat: { size: number; mtime: Date }) => {
    if (seen.has(full)) return;
    seen.add(full);
    const rel = path.relative(cwd, full);
    files.push({ path: full, display: rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : full, size: stat.size, mtime: stat.mtime });
  };
  const walk = async (dir: string) => {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if ((entry.isFile() || entry.isSymbolicLink()) && isImageName(entry.name)) {
        const stat = await fs.stat(full).catch(() => null);
        if (stat?.isFile()) add(full, stat);
      }
    }
  };
  for (const input of inputs) {
    const full = path.resolve(cwd, input);
    const stat = await fs.stat(full).catch(() => null);
    if (!stat) missing.push(input);
    else if (stat.isDirectory()) await walk(full);
    else if (stat.isFile()) add(full, stat);
    else missing.push(input);
  }
  return { files, missing };
}

/** sha256 of a file, read as a stream; `onBytes` sees each chunk's size. */
export async function sha256File(file: string, onBytes?: (n: number) => void): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    onBytes?.((chunk as Buffer).length);
  }
  return hash.digest('hex');
}

/** Runs `task` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
