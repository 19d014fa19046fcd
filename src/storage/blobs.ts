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

/**
 * Files on local disk (or a shared volume), addressed by key. Uploads are content-addressed:
 * `captures/ab/abcdef…` by sha256, so a re-sent file is stored once.
 */
export class BlobStore {
  constructor(readonly root: string) {}

  pathOf(key: string): string {
    if (!/^[a-z0-9/_.-]+$/.test(key) || key.includes('..')) throw new Error(`invalid blob key: ${key}`);
    return path.join(this.root, key);
  }

  /** Streams `source` to disk while hashing it; aborts past `maxBytes` leaving nothing behind. */
  async putStream(prefix: string, source: Readable, maxBytes: number): Promise<StoredBlob> {
    const tmpDir = path.join(this.root, 'tmp');
    await fs.mkdir(tmpDir, { recursive: true });
    const tmp = path.join(tmpDir, randomUUID());
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
    const key = `${prefix}/${sha256.slice(0, 2)}/${sha256}`;
    await fs.mkdir(path.dirname(this.pathOf(key)), { recursive: true });
    await fs.rename(tmp, this.pathOf(key));
    return { key, sha256, bytes };
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
