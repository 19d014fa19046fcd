import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';

export class BlobTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`file exceeds ${limit} bytes`);
  }
}

export type StoredBlob = { key: string; sha256: string; bytes: number };

/** An upload written to a temporary file: `commit` puts it at its key, `discard` drops it. */
export type StagedBlob = StoredBlob & { tmpPath: string };

/**
 * Files on local disk (or a shared volume), addressed by key. Uploads are content-addressed:
 * `captures/ab/abcdef…` by sha256, so a re-sent file is stored once.
 *
 * A content-addressed file may be deleted (retention) while another upload of the same bytes is
 * being recorded. It is not lost: uploads are staged and committed only after their capture row
 * exists, and deletion sets the file aside, re-checks for such rows and puts it back if one
 * appeared (services/retention.ts); a reader that comes in that moment retries (preprocess).
 */
export class BlobStore {
  constructor(readonly root: string) {}

  pathOf(key: string): string {
    if (!/^[a-z0-9/_.-]+$/.test(key) || key.includes('..')) throw new Error(`invalid blob key: ${key}`);
    return path.join(this.root, key);
  }

  /** Streams `source` to a temporary file while hashing it; aborts past `maxBytes` leaving nothing behind. */
  async stageStream(prefix: string, source: Readable, maxBytes: number): Promise<StagedBlob> {
    const tmp = await this.tmpFile();
    const hash = createHash('sha256');
    let bytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        if (bytes > maxBytes) return done(new BlobTooLargeError(maxBytes));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(source, meter, createWriteStream(tmp));
    } catch (error) {
      await fs.rm(tmp, { force: true });
      throw error;
    }
    const sha256 = hash.digest('hex');
    return { key: `${prefix}/${sha256.slice(0, 2)}/${sha256}`, sha256, bytes, tmpPath: tmp };
  }

  readStaged(staged: StagedBlob): Promise<Buffer> {
    return fs.readFile(staged.tmpPath);
  }

  /** Moves a staged upload to its key (replacing an identical file, if any). */
  async commit(staged: StagedBlob): Promise<void> {
    const target = this.pathOf(staged.key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.rename(staged.tmpPath, target);
  }

  async discard(staged: StagedBlob): Promise<void> {
    await fs.rm(staged.tmpPath, { force: true });
  }

  /** Moves the file out of its key; undefined when there was none. `restore` or `discard` it next. */
  async setAside(key: string): Promise<StagedBlob | undefined> {
    const aside = await this.tmpFile();
    try {
      await fs.rename(this.pathOf(key), aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return { key, sha256: '', bytes: 0, tmpPath: aside };
  }

  /** Puts a set-aside file back, unless an upload committed the same key meanwhile. */
  async restore(aside: StagedBlob): Promise<void> {
    if (await this.exists(aside.key)) await this.discard(aside);
    else await this.commit(aside);
  }

  /** Deletes staged or set-aside files older than `olderThanMs` (left by a crash); returns how many. */
  async sweepStaged(olderThanMs: number): Promise<number> {
    const tmpDir = path.join(this.root, 'tmp');
    const names = await fs.readdir(tmpDir).catch(() => [] as string[]);
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const name of names) {
      const file = path.join(tmpDir, name);
      const stat = await fs.stat(file).catch(() => undefined);
      if (stat && stat.mtimeMs < cutoff) {
        await fs.rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }

  private async tmpFile(): Promise<string> {
    const tmpDir = path.join(this.root, 'tmp');
    await fs.mkdir(tmpDir, { recursive: true });
    return path.join(tmpDir, randomUUID());
  }

  /** Atomic write (temp file + rename), so a reader never sees half a blob. */
  async put(key: string, data: Uint8Array | string): Promise<void> {
    const target = this.pathOf(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}.${randomUUID()}.tmp`;
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, target);
  }

  get(key: string): Promise<Buffer> {
    return fs.readFile(this.pathOf(key));
  }

  async exists(key: string): Promise<boolean> {
    return fs.access(this.pathOf(key)).then(() => true, () => false);
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.pathOf(key), { force: true });
  }
}
