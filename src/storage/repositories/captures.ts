/** Captures and batches: intake with per-device dedupe, and tenancy-scoped reads. */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { Batch } from '../../../models/Batch.js';
import { Capture, type CapturedAtSource, type CaptureStatus } from '../../../models/Capture.js';
import { Face } from '../../../models/Face.js';
import { INITIAL_STATE } from '../capture-lifecycle.js';
import { isDuplicateKeyError, isRetryableTransactionError, type Principal } from './principal.js';

export type IncomingCapture = {
  sha256: string;
  blobKey: string;
  bytes: number;
  format: string;
  width: number | null;
  height: number | null;
  capturedAt: Date;
  capturedAtSource: CapturedAtSource;
};

export type RecordedCapture = {
  id: string;
  sha256: string;
  status: CaptureStatus;
  /** True when this device had already sent the file: nothing new was created or enqueued. */
  duplicate: boolean;
  errorCode: string | null;
  errorMessage: string | null;
};

export type DeviceRef = { merchantId: string; storeId: string; deviceId: string };

/**
 * Records one upload: a batch, a capture per new file, and the batch's list of every file it sent
 * (in order, duplicates included). A file this device already sent (unique device_id + sha256)
 * is answered with the existing capture as it stands: INSERT, and on a duplicate-key error a locking
 * read of the existing row (which sees a concurrent upload's committed row). One transaction, retried
 * on deadlock, so an upload is recorded whole or not at all.
 */
export async function recordUpload(
  db: Knex,
  device: DeviceRef,
  files: IncomingCapture[],
  receivedAt: Date,
): Promise<{ batchId: string; captures: RecordedCapture[] }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction((trx) => recordUploadOnce(trx, device, files, receivedAt));
    } catch (error) {
      if (attempt >= 4 || !isRetryableTransactionError(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt + Math.random() * 30));
    }
  }
}

async function recordUploadOnce(
  trx: Knex.Transaction,
  device: DeviceRef,
  files: IncomingCapture[],
  receivedAt: Date,
): Promise<{ batchId: string; captures: RecordedCapture[] }> {
  const batchId = randomUUID();
  await trx('batches').insert({
    id: batchId,
    device_id: device.deviceId,
    store_id: device.storeId,
    merchant_id: device.merchantId,
    created_at: receivedAt,
  });
  const captures: RecordedCapture[] = [];
  const linked = new Map<string, number>();
  for (const file of files) {
    const id = randomUUID();
    let recorded: RecordedCapture;
    try {
      await trx('captures').insert({
        id,
        batch_id: batchId,
        device_id: device.deviceId,
        store_id: device.storeId,
        merchant_id: device.merchantId,
        sha256: file.sha256,
        blob_key: file.blobKey,
        bytes: file.bytes,
        format: file.format,
        width: file.width,
        height: file.height,
        ...INITIAL_STATE,
        captured_at: file.capturedAt,
        captured_at_source: file.capturedAtSource,
        received_at: receivedAt,
        updated_at: receivedAt,
      });
      recorded = { id, sha256: file.sha256, status: 'queued', duplicate: false, errorCode: null, errorMessage: null };
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      const existing = await trx('captures')
        .where({ device_id: device.deviceId, sha256: file.sha256 })
        .forShare()
        .first('id', 'status', 'error_code', 'error_message');
      if (!existing) throw error;
      recorded = {
        id: existing.id,
        sha256: file.sha256,
        status: existing.status,
        duplicate: true,
        errorCode: existing.error_code,
        errorMessage: existing.error_message,
      };
    }
    if (!linked.has(recorded.id)) linked.set(recorded.id, linked.size);
    captures.push(recorded);
  }
  if (linked.size > 0) {
    await trx('batch_captures').insert([...linked].map(([captureId, position]) => ({ batch_id: batchId, capture_id: captureId, position })));
  }
  return { batchId, captures };
}

function scoped<Q extends Knex.QueryBuilder>(query: Q, principal: Principal, table: string): Q {
  if (principal.role === 'merchant') query.where(`${table}.merchant_id`, principal.merchantId);
  if (principal.role === 'device') query.where(`${table}.device_id`, principal.deviceId);
  return query;
}

/** A capture the principal may read: admin any, a merchant its own, a device only what it sent. */
export async function findCapture(db: Knex, id: string, principal: Principal): Promise<Capture | undefined> {
  const row = await scoped(db('captures').where('captures.id', id), principal, 'captures').first();
  return row ? Capture.fromDatabaseJson(row) : undefined;
}

export async function listCaptureFaces(db: Knex, captureId: string): Promise<Face[]> {
  return Face.query(db).where('capture_id', captureId).orderBy('face_index');
}

export type BatchView = {
  batch: Batch;
  captures: { id: string; sha256: string; status: CaptureStatus; errorCode: string | null; errorMessage: string | null }[];
};

export async function findBatch(db: Knex, id: string, principal: Principal): Promise<BatchView | undefined> {
  const row = await scoped(db('batches').where('batches.id', id), principal, 'batches').first();
  if (!row) return undefined;
  const captures = await db('batch_captures as bc')
    .join('captures as c', 'c.id', 'bc.capture_id')
    .where('bc.batch_id', id)
    .orderBy('bc.position')
    .select('c.id', 'c.sha256', 'c.status', 'c.error_code', 'c.error_message');
  return {
    batch: Batch.fromDatabaseJson(row),
    captures: captures.map((c) => ({
      id: c.id,
      sha256: c.sha256,
      status: c.status,
      errorCode: c.error_code,
      errorMessage: c.error_message,
    })),
  };
}

/** A batch is done when every capture it lists is done or failed. */
export function batchStatus(statuses: CaptureStatus[]): 'processing' | 'done' {
  return statuses.every((s) => s === 'done' || s === 'failed') ? 'done' : 'processing';
}

/** Records the decoded size, and the EXIF time when the device sent none and intake found none. */
export async function recordDecoded(db: Knex, captureId: string, size: { width: number; height: number }, exifCapturedAt?: Date): Promise<void> {
  const update: Record<string, unknown> = { width: size.width, height: size.height };
  if (exifCapturedAt) {
    update.captured_at = db.raw("IF(captured_at_source = 'receipt', ?, captured_at)", [exifCapturedAt]);
    update.captured_at_source = db.raw("IF(captured_at_source = 'receipt', 'exif', captured_at_source)");
  }
  await db('captures').where({ id: captureId }).update(update);
}
