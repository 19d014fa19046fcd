/** What the API and the workers need of blob storage, whatever holds the bytes (local disk or S3). */
import type { Readable } from 'node:stream';

export type StoredBlob = { key: string; sha256: string; bytes: number };

/** An upload written to a local temporary file: `commit` puts it at its key, `discard` drops it. */
export type StagedBlob = StoredBlob & { readonly tmpPath: string };

/**
 * Blobs addressed by key. Uploads are content-addressed: `captures/ab/abcdef…` by sha256, so a
 * re-sent file is stored once.
 *
 * A content-addressed blob may be deleted (retention) while another upload of the same bytes is
 * being recorded. It is not lost: uploads are staged and committed only after their capture row
 * exists, and retention deletes only while it holds the rows of those keys locked, so such a row
 * waits for the deletion and its upload stores the file again after (services/retention.ts).
 *
 * Faults of the store itself (disk full or unwritable, object store down) are thrown as
 * BlobStoreFault; a missing key as BlobNotFoundError.
 */
export interface BlobStore {
  /** Streams `source` to a local temporary file while hashing it; aborts past `maxBytes` leaving nothing behind. */
  stageStream(prefix: string, source: Readable, maxBytes: number): Promise<StagedBlob>;
  readStaged(staged: StagedBlob): Promise<Buffer>;
  /** Stores a staged upload at its key (replacing identical bytes, if any). The staged file is gone afterwards, stored or not. */
  commit(staged: StagedBlob): Promise<void>;
  discard(staged: StagedBlob): Promise<void>;
  /** Deletes staged uploads older than `olderThanMs` (left by a crash); returns how many. */
  sweepStaged(olderThanMs: number): Promise<number>;
  /** Writes a whole blob at once; readers never see half of it. */
  put(key: string, data: Uint8Array | string): Promise<void>;
  get(key: string): Promise<Buffer>;
  exists(key: string): Promise<boolean>;
  delete(key: string): Promise<void>;
  /** Deletes the blobs of `keys` (none is fine), many per request where the store allows it. */
  deleteMany(keys: string[]): Promise<void>;
  /** Deletes every blob whose key starts with `prefix/`. */
  deletePrefix(prefix: string): Promise<void>;
  /** A cheap check that the store answers and can stage uploads (readiness). */
  probe(): Promise<void>;
}

export class BlobTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`file exceeds ${limit} bytes`);
  }
}

/** Carries `code: 'ENOENT'`, so a reader can treat a missing blob alike on every store. */
export class BlobNotFoundError extends Error {
  readonly code = 'ENOENT';
  constructor(readonly key: string) {
    super(`no blob at ${key}`);
    this.name = 'BlobNotFoundError';
  }
}

/** `full`: no space left (ENOSPC, EDQUOT, an object store's 507); `unavailable`: any other fault of the store. */
export type StorageFaultKind = 'full' | 'unavailable';

export class BlobStoreFault extends Error {
  constructor(
    readonly kind: StorageFaultKind,
    cause: unknown,
  ) {
    super(`blob store ${kind === 'full' ? 'full' : 'unavailable'}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'BlobStoreFault';
  }
}

const FULL_ERRNO = new Set(['ENOSPC', 'EDQUOT']);
const FULL_S3_CODES = new Set(['XMinioStorageFull']);

function isFull(error: unknown): boolean {
  const e = error as { code?: unknown; name?: unknown; $metadata?: { httpStatusCode?: number } } | undefined;
  return FULL_ERRNO.has(String(e?.code)) || FULL_S3_CODES.has(String(e?.name)) || e?.$metadata?.httpStatusCode === 507;
}

/** The store's own failure, as a BlobStoreFault (unchanged if it already is one). */
export function storageFault(error: unknown): BlobStoreFault {
  return error instanceof BlobStoreFault ? error : new BlobStoreFault(isFull(error) ? 'full' : 'unavailable', error);
}

/** Awaits a store operation, turning any failure into a BlobStoreFault. */
export async function guard<T>(operation: Promise<T>): Promise<T> {
  try {
    return await operation;
  } catch (error) {
    throw storageFault(error);
  }
}

export function assertBlobKey(key: string): void {
  if (!/^[a-z0-9/_.-]+$/.test(key) || key.includes('..') || key.startsWith('/')) throw new Error(`invalid blob key: ${key}`);
}
