import type { WorkImageRef } from '../src/queue/contract.js';
import { PermanentStageError } from '../src/queue/stage-worker.js';
import type { BlobStore } from '../src/storage/blobs.js';
import type { RgbImage } from '../src/vision/types.js';

export async function loadWorkImage(blobs: BlobStore, work: WorkImageRef): Promise<RgbImage> {
  const data = await blobs.get(work.key);
  if (data.length !== work.width * work.height * 3) {
    throw new PermanentStageError('work_image_corrupt', `working image ${work.key} has ${data.length} bytes, expected ${work.width * work.height * 3}`);
  }
  return { data, width: work.width, height: work.height };
}
