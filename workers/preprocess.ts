/** Stage 1: sniff, decode, orient and size-cap the upload; write the RGB working image. */
import sharp from 'sharp';
import { ImageError } from '../src/imaging/errors.js';
import { imageLimits, prepareImage } from '../src/imaging/prepare.js';
import { isLastAttempt, PermanentStageError, type StageDefinition } from '../src/queue/stage-worker.js';
import { workImageKey } from '../src/storage/work-files.js';
import type { WorkerContext } from './context.js';

// One libvips thread per job: parallelism comes from job concurrency, and the models need the cores.
sharp.concurrency(1);

export function preprocessStage({ config, blobs, pipeline }: WorkerContext): StageDefinition<'preprocess'> {
  const limits = imageLimits(config);
  return {
    stage: 'preprocess',
    concurrency: 2,
    async handle({ captureId, run }, job) {
      const capture = await pipeline.capture(captureId);
      if (!capture) throw new PermanentStageError('capture_missing', 'the capture no longer exists');
      const bytes = await blobs.get(capture.blob_key).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
        // Retention may hold the file aside for a moment while it re-checks (services/retention.ts):
        // only the last attempt takes a missing file as gone.
        if (isLastAttempt(job)) throw new PermanentStageError('image_missing', 'the stored image is gone');
        throw new Error('the stored image is missing; retrying');
      });
      const prepared = await prepareImage(bytes, limits).catch((error) => {
        if (error instanceof ImageError) throw new PermanentStageError(error.code, error.message);
        throw error;
      });
      const key = workImageKey(captureId, run);
      await blobs.put(key, prepared.image.data);
      await pipeline.recordDecoded(captureId, { width: prepared.originalWidth, height: prepared.originalHeight }, prepared.exifCapturedAt);
      return {
        captureId,
        run,
        work: { key, width: prepared.image.width, height: prepared.image.height, scale: prepared.scale },
      };
    },
  };
}
