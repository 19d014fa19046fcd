/**
 * The blob store: local disk by default, an S3-compatible bucket with `BLOB_URL=s3://bucket/prefix`.
 * See blobs/contract.ts for what every store guarantees.
 */
import path from 'node:path';
import type { Config } from '../config.js';
import type { BlobStore } from './blobs/contract.js';
import { LocalBlobStore } from './blobs/local.js';
import { S3BlobStore } from './blobs/s3.js';

export * from './blobs/contract.js';

/**
 * The store BLOB_URL names. For S3 the endpoint of a compatible server comes from
 * AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, region and credentials from the SDK's default chain.
 */
export function openBlobStore(config: Pick<Config, 'BLOB_URL' | 'blobsDir' | 'DATA_DIR'>): BlobStore {
  if (!config.BLOB_URL || config.BLOB_URL === 'file:') return new LocalBlobStore(config.blobsDir);
  const url = new URL(config.BLOB_URL);
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || undefined;
  // Uploads are staged on this host's disk before they go to the bucket.
  return new S3BlobStore({ bucket: url.hostname, prefix: url.pathname.replace(/^\/+|\/+$/g, ''), endpoint }, path.join(config.DATA_DIR, 'tmp'));
}
