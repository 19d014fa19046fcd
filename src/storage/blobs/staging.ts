/** Uploads staged in a local folder while they are hashed and checked, before a store commits them. */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobTooLargeError, guard, storageFault, type StagedBlob } from './contract.js';

export class StagingArea {
  constructor(readonly dir: string) {}

  /**
   * Streams `source` to a new file here while hashing it; aborts past `maxBytes` leaving nothing
   * behind. A failure to write is the store's (BlobStoreFault); one of the source is passed on.
   */
  async stage(prefix: string, source: Readable, maxBytes: number): Promise<StagedBlob> {
    const { tmpPath, file } = await this.createFile();
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
    const sink = createWriteStream(tmpPath, { fd: file });
    // The pipeline destroys every stream with the first error: whoever failed first is to blame.
    let sinkFailedFirst = false;
    sink.once('error', () => (sinkFailedFirst = !source.errored && !meter.errored));
    try {
      await pipeline(source, meter, sink);
    } catch (error) {
      await fs.rm(tmpPath, { force: true }).catch(() => undefined);
      throw sinkFailedFirst ? storageFault(error) : error;
    }
    const sha256 = hash.digest('hex');
    return { key: `${prefix}/${sha256.slice(0, 2)}/${sha256}`, sha256, bytes, tmpPath };
  }

  read(staged: StagedBlob): Promise<Buffer> {
    return guard(fs.readFile(staged.tmpPath));
  }

  discard(tmpPath: string): Promise<void> {
    return guard(fs.rm(tmpPath, { force: true }));
  }

  /** A new file here, open for writing; the folder is made only when missing (not on every upload). */
  private async createFile(): Promise<{ tmpPath: string; file: fs.FileHandle }> {
    const tmpPath = path.join(this.dir, randomUUID());
    try {
      return { tmpPath, file: await fs.open(tmpPath, 'wx') };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw storageFault(error);
    }
    await guard(fs.mkdir(this.dir, { recursive: true }));
    return { tmpPath, file: await guard(fs.open(tmpPath, 'wx')) };
  }

  /** Deletes files older than `olderThanMs` (left by a crash); returns how many. */
  async sweep(olderThanMs: number): Promise<number> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const name of names) {
      const file = path.join(this.dir, name);
      const stat = await fs.stat(file).catch(() => undefined);
      if (stat && stat.mtimeMs < cutoff) {
        await fs.rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }

  /** The folder exists (or can be made) and is writable. */
  async probe(): Promise<void> {
    await guard(fs.mkdir(this.dir, { recursive: true }));
    await guard(fs.access(this.dir, fs.constants.W_OK));
  }
}
