import { BaseModel } from './base.js';

import type { CaptureState } from '../src/storage/capture-lifecycle.js';

export type CaptureStatus = CaptureState;
export type CapturedAtSource = 'device' | 'exif' | 'receipt';

export class Capture extends BaseModel {
  static tableName = 'captures';

  id!: string;
  /** The batch that first sent this file; later batches re-sending it are linked in batch_captures. */
  batchId!: string;
  deviceId!: string;
  storeId!: string;
  merchantId!: string;
  sha256!: string;
  blobKey!: string;
  bytes!: number;
  format!: string | null;
  status!: CaptureStatus;
  stage!: string;
  errorCode!: string | null;
  errorMessage!: string | null;
  capturedAt!: Date;
  capturedAtSource!: CapturedAtSource;
  receivedAt!: Date;
  width!: number | null;
  height!: number | null;
  faceCount!: number | null;
  run!: number;
  updatedAt!: Date;
}

/** Links a batch to each capture it sent, new or duplicate, in upload order. */
export class BatchCapture extends BaseModel {
  static tableName = 'batch_captures';
  static idColumn = ['batch_id', 'capture_id'];

  batchId!: string;
  captureId!: string;
  position!: number;
}
