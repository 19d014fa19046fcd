/**
 * The vision queue: preprocess, detect and embed as checkpointed steps of one job, so the decoded
 * pixels never leave this process (a hand-off through storage would move a 3.7 MB raw image per
 * capture). A failed attempt saves what it finished in the job's data — the decoded size recorded,
 * the detector's faces — and the retry resumes after it; it decodes again, since pixels are never
 * stored. The faces leave in original-image pixels, with their embeddings, in the match payload;
 * for a merchant that keeps face crops, each face's crop is cut here, with the pixels, and stored.
 * A first run that finds no face ends here: there is nothing to match or to write.
 *
 * Two jobs at a time, one image at a time through the models: while one job decodes, detects and
 * embeds, the other starts its capture and downloads its upload, or stores its crops and ends, so
 * a blob store across a network (tens of milliseconds a request) does not leave the models idle.
 */
import sharp from 'sharp';
import { ImageError } from '../src/imaging/errors.js';
import { imageLimits, prepareImage, type PreparedImage } from '../src/imaging/prepare.js';
import { timingsObserver } from '../src/metrics/pipeline-metrics.js';
import { encodeEmbedding, faceIdOf, type JobPayload, type VisionCheckpoint } from '../src/queue/contract.js';
import { isLastAttempt, PermanentStageError, type PipelineDefinition, type StepRunner } from '../src/queue/pipeline-worker.js';
import { faceCropKey } from '../src/services/face-crops.js';
import { recordDecoded } from '../src/storage/repositories/captures.js';
import type { StartedCapture } from '../src/storage/capture-lifecycle.js';
import { keepsFaceCrops } from '../src/storage/repositories/face-crops.js';
import { createDescriber, createDetector, encodeFaceCrop, scaleFaces } from '../src/vision/index.js';
import type { Job } from 'bullmq';
import type { WorkerContext } from './context.js';

// One libvips thread per job: parallelism comes from processes, and the models need the cores.
sharp.concurrency(1);

/** Runs the work it is given one at a time, in the order given; a failure does not hold up the next. */
function oneAtATime(): <T>(work: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return (work) => {
    const result = last.then(work);
    last = result.catch(() => undefined);
    return result;
  };
}

export async function visionStage({ config, blobs, db, lifecycle, metrics }: WorkerContext): Promise<PipelineDefinition<'vision'>> {
  const visionOptions = { modelsDir: config.modelsDir, pack: config.MODEL_PACK, threads: config.INFERENCE_THREADS };
  const detector = await createDetector({ ...visionOptions, detectThreshold: config.DETECT_THRESHOLD });
  const describer = await createDescriber(visionOptions);
  const observeDetector = timingsObserver(metrics.inference, () => detector.timings, ['detect', 'landmarks']);
  const observeDescriber = timingsObserver(metrics.inference, () => describer.timings, ['align', 'embed', 'attributes']);
  const limits = imageLimits(config);
  const throughTheModels = oneAtATime();

  async function readUpload(key: string, job: Job): Promise<Buffer> {
    try {
      return await blobs.get(key);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      // Retention may hold the file aside for a moment while it re-checks (services/retention.ts):
      // only the last attempt takes a missing file as gone.
      if (isLastAttempt(job)) throw new PermanentStageError('image_missing', 'the stored image is gone');
      throw new Error('the stored image is missing; retrying');
    }
  }

  async function decode(upload: Buffer): Promise<PreparedImage> {
    try {
      return await prepareImage(upload, limits);
    } catch (error) {
      if (error instanceof ImageError) throw new PermanentStageError(error.code, error.message);
      throw error;
    }
  }

  /**
   * For a merchant that opted in, each face's aligned crop stored (cut with the pixels, in
   * `seeImage`). Whether it kept them.
   */
  async function storeFaceCrops({ merchant_id: merchantId, id: captureId }: StartedCapture, crops: Buffer[]): Promise<boolean> {
    if (crops.length === 0) return false;
    const keys = crops.map((_crop, faceIndex) => faceCropKey(merchantId, faceIdOf(captureId, faceIndex)));
    for (const [faceIndex, crop] of crops.entries()) await blobs.put(keys[faceIndex], crop);
    // The setting was read as the job began: a merchant who turned it off since had its crops
    // deleted then, and keeps none of these either.
    if (await keepsFaceCrops(db, merchantId)) return true;
    for (const key of keys) await blobs.delete(key);
    return false;
  }

  /**
   * The work on the pixels: decode, detect and embed one capture's upload, and cut its faces'
   * crops when its merchant keeps them. Nothing here waits on the network but the rare correction
   * of the size or time intake recorded.
   */
  async function seeImage(capture: StartedCapture, upload: Buffer, checkpoint: VisionCheckpoint, step: StepRunner) {
    const prepared = await step('preprocess', async () => {
      const decoded = await decode(upload);
      // Intake recorded the header's size and EXIF time; most images need no correction.
      const resized = decoded.originalWidth !== capture.width || decoded.originalHeight !== capture.height;
      const laterExif = capture.captured_at_source === 'receipt' && decoded.exifCapturedAt !== undefined;
      if (!checkpoint.decodedRecorded && (resized || laterExif)) {
        await recordDecoded(db, capture.id, { width: decoded.originalWidth, height: decoded.originalHeight }, decoded.exifCapturedAt);
        checkpoint.decodedRecorded = true;
      }
      return decoded;
    });
    const faces = checkpoint.faces ?? (await step('detect', () => detector.detect(prepared.image)));
    checkpoint.faces = faces;
    observeDetector();
    const { described, crops } = await step('embed', async () => {
      const described = faces.length === 0 ? [] : await describer.describe(prepared.image, faces);
      const crops = capture.keep_face_crops ? await Promise.all(described.map((face) => encodeFaceCrop(prepared.image, face.landmarks))) : [];
      return { described, crops };
    });
    observeDescriber(described.length);
    return { described, crops, scale: prepared.scale, exifCapturedAt: prepared.exifCapturedAt };
  }

  return {
    queue: 'vision',
    // One job's I/O beside the other's inference (above); more would only queue for the models.
    concurrency: 2,
    async handle(payload, step, job) {
      const { captureId, run } = payload;
      const checkpoint: VisionCheckpoint = { ...payload.checkpoint };
      try {
        const capture = await lifecycle.begin(captureId, run, 'preprocess');
        if (!capture) return { skipped: true };
        const upload = await readUpload(capture.blob_key, job);
        // onnxruntime's run() blocks the event loop, and the cores are the models': one image at a time.
        const seen = await throughTheModels(() => seeImage(capture, upload, checkpoint, step));
        if (seen.described.length === 0 && run === 0) {
          if (!(await lifecycle.finishFaceless(captureId, run))) return { skipped: true };
          metrics.facesPerCapture.observe(0);
          return { next: null };
        }
        const cropsKept = await storeFaceCrops(capture, seen.crops);
        const capturedAt = capture.captured_at_source === 'receipt' && seen.exifCapturedAt ? seen.exifCapturedAt : capture.captured_at;
        const next: JobPayload<'match'> = {
          captureId,
          run,
          merchantId: capture.merchant_id,
          capturedAt: capturedAt.toISOString(),
          pack: describer.pack,
          faces: scaleFaces(seen.described, 1 / seen.scale).map(({ embedding, ...face }) => ({ ...face, embedding: encodeEmbedding(embedding) })),
          ...(cropsKept ? { cropsKept } : {}),
        };
        return { next };
      } catch (error) {
        if (!(error instanceof PermanentStageError) && (checkpoint.decodedRecorded || checkpoint.faces)) {
          // Best effort: without it (Redis down too) the retry simply starts over.
          await job.updateData({ ...payload, checkpoint }).catch(() => undefined);
        }
        throw error;
      }
    },
  };
}
