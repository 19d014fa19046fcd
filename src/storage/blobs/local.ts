/** Blobs as files under one folder on local disk: the embedded default (BLOB_URL unset or `file:`). */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { assertBlobKey, BlobNotFoundError, guard, storageFault, type BlobStore, type StagedBlob } from './contract.js';
import { StagingArea } from './staging.js';

const errorCode = (error: unknown) => (error as NodeJS.ErrnoException).code;

export class LocalBlobStore implements BlobStore {
  /** On the same file system as the blobs, so that a commit is a rename. */
  private readonly staging: StagingArea;

  constructor(readonly root: string) {
    this.staging = new StagingArea(path.join(root, 'tmp'));
  }

  stageStream(prefix: string, source: Readable, maxBytes: number): Promise<StagedBlob> {
    return this.staging.stage(prefix, source, maxBytes);
  }

  readStaged(staged: StagedBlob): Promise<Buffer> {
    return this.staging.read(staged);
  }

  async commit(staged: StagedBlob): Promise<void> {
    try {
      await this.moveInto(staged.tmpPath, staged.key);
    } catch (error) {
      await fs.rm(staged.tmpPath, { force: true }).catch(() => undefined);
      throw storageFault(error);
    }
  }

  discard(staged: StagedBlob): Promise<void> {
    return this.staging.discard(staged.tmpPath);
  }

  sweepStaged(olderThanMs: number): Promise<number> {
    return this.staging.sweep(olderThanMs);
  }

  /** Atomic write (temp file + rename), so a reader never sees half a blob. */
  async put(key: string, data: Uint8Array | string): Promise<void> {
    const target = this.pathOf(key);
    const tmp = `${target}.${randomUUID()}.tmp`;
    try {
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.writeFile(tmp, data);
      await fs.rename(tmp, target);
    } catch (error) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw storageFault(error);
    }
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.pathOf(key));
    } catch (error) {
      throw errorCode(error) === 'ENOENT' ? new BlobNotFoundError(key) : storageFault(error);
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await fs.access(this.pathOf(key));
      return true;
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return false;
      throw storageFault(error);
    }
  }

  async delete(key: string): Promise<void> {
    await guard(fs.rm(this.pathOf(key), { force: true }));
  }

  async deleteMany(keys: string[]): Promise<void> {
    for (const key of keys) await this.delete(key);
  }

  async deletePrefix(prefix: string): Promise<void> {
    await guard(fs.rm(this.pathOf(prefix), { recursive: true, force: true }));
  }

  probe(): Promise<void> {
    return this.staging.probe();
  }

  private pathOf(key: string): string {
    assertBlobKey(key);
    return path.join(this.root, key);
  }

  /** Renames `file` to the key's path; its folder (one of few, by hash prefix) usually exists already. */
  private async moveInto(file: string, key: string): Promise<void> {
    const target = this.pathOf(key);
    try {
      await fs.rename(file, target);
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.rename(file, target);
    }
  }
}
