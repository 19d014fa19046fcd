/**
 * Blobs in an S3-compatible bucket (BLOB_URL=s3://bucket/prefix) through the AWS SDK v3. Uploads
 * are staged on local disk while hashed and checked, then streamed to the bucket by `commit`.
 * Region and credentials come from the SDK's default chain (AWS_REGION, AWS_ACCESS_KEY_ID, ...).
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { assertBlobKey, BlobNotFoundError, guard, storageFault, type BlobStore, type StagedBlob } from './contract.js';
import { StagingArea } from './staging.js';

export type S3Location = {
  bucket: string;
  /** Key prefix inside the bucket, without slashes at either end; '' for none. */
  prefix: string;
  /** An S3-compatible server (MinIO, ...), addressed path-style; undefined for AWS itself. */
  endpoint?: string;
};

type Sdk = typeof import('@aws-sdk/client-s3');

const errorName = (error: unknown) => (error as { name?: string }).name;

const CONNECTION_TIMEOUT_MS = 5_000;
/**
 * How long a connected store may send nothing before the request fails. Under 6 s the SDK arms it
 * as the request starts; a longer one it arms 3 s late.
 */
export const SILENCE_TIMEOUT_MS = 5_000;
const COMMIT_ATTEMPTS = 3;
const COMMIT_RETRY_MS = 100;
const QUIET_SDK_LOGGER = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** S3 answered, and asked for the request again: a server error or throttling. */
function answeredRetryable(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return status !== undefined && (status >= 500 || status === 429) && status !== 507;
}

/**
 * The body's chunks joined with one copy. node:stream/consumers' buffer() goes through a Blob and
 * an ArrayBuffer (two copies more), the SDK's transformToByteArray through an array Buffer.from
 * copies again: each costs CPU on every image the workers read.
 */
async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return Buffer.concat(chunks, bytes);
}

export class S3BlobStore implements BlobStore {
  private readonly staging: StagingArea;
  private connection?: Promise<{ sdk: Sdk; client: S3Client }>;

  constructor(
    readonly location: S3Location,
    stagingDir: string,
  ) {
    this.staging = new StagingArea(stagingDir);
  }

  stageStream(prefix: string, source: Readable, maxBytes: number): Promise<StagedBlob> {
    return this.staging.stage(prefix, source, maxBytes);
  }

  readStaged(staged: StagedBlob): Promise<Buffer> {
    return this.staging.read(staged);
  }

  /**
   * Streams the staged file to the bucket in one PutObject (uploads are far below its 5 GB limit),
   * its length known from staging, so nothing of it is buffered. The SDK cannot resend a stream, so
   * an answer that S3 asks to be retried (5xx, throttling) is retried here from the file; a store
   * that cannot be reached, or stays silent, fails the commit (the upload is answered 503 and sent
   * again).
   */
  async commit(staged: StagedBlob): Promise<void> {
    try {
      const { sdk, client } = await this.connect();
      for (let attempt = 1; ; attempt++) {
        try {
          const Body = createReadStream(staged.tmpPath);
          await client.send(new sdk.PutObjectCommand({ Bucket: this.location.bucket, Key: this.objectKey(staged.key), Body, ContentLength: staged.bytes }));
          return;
        } catch (error) {
          if (attempt >= COMMIT_ATTEMPTS || !answeredRetryable(error)) throw error;
          await new Promise((resolve) => setTimeout(resolve, COMMIT_RETRY_MS * attempt));
        }
      }
    } catch (error) {
      throw storageFault(error);
    } finally {
      await fs.rm(staged.tmpPath, { force: true }).catch(() => undefined);
    }
  }

  discard(staged: StagedBlob): Promise<void> {
    return this.staging.discard(staged.tmpPath);
  }

  sweepStaged(olderThanMs: number): Promise<number> {
    return this.staging.sweep(olderThanMs);
  }

  async put(key: string, data: Uint8Array | string): Promise<void> {
    const { sdk, client } = await this.connect();
    await guard(client.send(new sdk.PutObjectCommand({ Bucket: this.location.bucket, Key: this.objectKey(key), Body: data })));
  }

  async get(key: string): Promise<Buffer> {
    const { sdk, client } = await this.connect();
    try {
      const object = await client.send(new sdk.GetObjectCommand({ Bucket: this.location.bucket, Key: this.objectKey(key) }));
      return await readAll(object.Body as Readable);
    } catch (error) {
      throw errorName(error) === 'NoSuchKey' ? new BlobNotFoundError(key) : storageFault(error);
    }
  }

  async exists(key: string): Promise<boolean> {
    const { sdk, client } = await this.connect();
    try {
      await client.send(new sdk.HeadObjectCommand({ Bucket: this.location.bucket, Key: this.objectKey(key) }));
      return true;
    } catch (error) {
      if (errorName(error) === 'NotFound') return false;
      throw storageFault(error);
    }
  }

  async delete(key: string): Promise<void> {
    await this.deleteObject(this.objectKey(key));
  }

  deleteMany(keys: string[]): Promise<void> {
    return this.deleteObjects(keys.map((key) => this.objectKey(key)));
  }

  async deletePrefix(prefix: string): Promise<void> {
    await this.deleteObjects((await this.list(this.objectKey(prefix))).map((object) => object.key));
  }

  async probe(): Promise<void> {
    await this.staging.probe();
    const { sdk, client } = await this.connect();
    await guard(client.send(new sdk.HeadBucketCommand({ Bucket: this.location.bucket })));
  }

  private objectKey(key: string): string {
    assertBlobKey(key);
    return this.location.prefix ? `${this.location.prefix}/${key}` : key;
  }

  private connect(): Promise<{ sdk: Sdk; client: S3Client }> {
    // The SDK takes about half a second and 30 MB to load: only deployments on S3 pay for it.
    this.connection ??= import('@aws-sdk/client-s3').then((s3) => ({ sdk: s3, client: this.createClient(s3) }));
    return this.connection;
  }

  private createClient(s3: Sdk): S3Client {
    const client = new s3.S3Client({
      endpoint: this.location.endpoint,
      forcePathStyle: this.location.endpoint !== undefined,
      // The SDK's default since 2025 adds a CRC32 to every upload and checks one on every
      // download: CPU on each image moved, and S3-compatible servers do not all support it.
      // Blobs are content-addressed (sha256) already; checksums only where S3 requires them
      // (DeleteObjects, which retention sends, still carries one).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // A store that takes no connection fails the request within 5 s, and one that takes it and
      // then sends nothing for 5 s fails it too: a 503 at intake, a retry in the workers, never a
      // request waiting for ever. The silence is timed on the socket (no timer per request).
      requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS, socketTimeout: SILENCE_TIMEOUT_MS },
      // Each command class's middleware stack resolved once, not sorted again on every request:
      // about a sixth of the client's CPU per GetObject (docs/benchmarks.md, session 15).
      cacheMiddleware: true,
      // Without a logger the SDK prints to the console a bare "An error was encountered in a
      // non-retryable streaming request." for each failed upload; the failure itself reaches the
      // caller as a BlobStoreFault, which is logged with its cause.
      logger: QUIET_SDK_LOGGER,
    });
    // Given any logger but its own no-op one, the SDK copies each request's input and answer
    // through their schemas' log filters for the logger to drop: work on every request for
    // nothing (failures reach the caller, and are logged there).
    client.middlewareStack.remove('loggerMiddleware');
    return client;
  }

  private async deleteObject(objectKey: string): Promise<void> {
    const { sdk, client } = await this.connect();
    await guard(client.send(new sdk.DeleteObjectCommand({ Bucket: this.location.bucket, Key: objectKey })));
  }

  /** Deletes objects by key, a thousand per request (the S3 limit). */
  private async deleteObjects(objectKeys: string[]): Promise<void> {
    const { sdk, client } = await this.connect();
    for (let i = 0; i < objectKeys.length; i += 1000) {
      const batch = objectKeys.slice(i, i + 1000).map((Key) => ({ Key }));
      const result = await guard(client.send(new sdk.DeleteObjectsCommand({ Bucket: this.location.bucket, Delete: { Objects: batch, Quiet: true } })));
      if (result.Errors?.length) throw storageFault(new Error(`could not delete ${result.Errors[0].Key}: ${result.Errors[0].Code} ${result.Errors[0].Message}`));
    }
  }

  /** Every object under `folder/`, page by page. */
  private async list(folder: string): Promise<{ key: string; modifiedAt: number }[]> {
    const { sdk, client } = await this.connect();
    const objects: { key: string; modifiedAt: number }[] = [];
    let token: string | undefined;
    do {
      const page = await guard(client.send(new sdk.ListObjectsV2Command({ Bucket: this.location.bucket, Prefix: `${folder}/`, ContinuationToken: token })));
      for (const object of page.Contents ?? []) objects.push({ key: object.Key!, modifiedAt: object.LastModified?.getTime() ?? 0 });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return objects;
  }
}
