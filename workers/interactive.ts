/**
 * Synchronous requests the API waits on: enrolment of a member's face, and identify (face sign-in).
 * They share the pipeline's vision code but answer through the job's return value.
 */
import type { Worker } from 'bullmq';
import { INTERACTIVE_QUEUE, type FaceSummary, type InteractiveResult } from '../src/queue/contract.js';
import { startQueueWorker } from '../src/queue/worker.js';
import { ImageError } from '../src/imaging/errors.js';
import { imageLimits, prepareImage } from '../src/imaging/prepare.js';
import { faceCropKey } from '../src/services/face-crops.js';
import { keepsFaceCrops } from '../src/storage/repositories/face-crops.js';
import { createDescriber, createDetector, encodeFaceCrop, scaleFaces } from '../src/vision/index.js';
import type { DescribedFace, DetectedFace } from '../src/vision/types.js';
import { workerDeps, type WorkerContext } from './context.js';
import { queueCatchUpIfSwitched } from './reembed.js';

/** Faces smaller than this share of the largest one are background, not a second person to enrol. */
const BACKGROUND_FACE_AREA_RATIO = 0.25;

export function foregroundFaces<T extends DetectedFace>(faces: T[]): T[] {
  const area = (face: T) => face.box.width * face.box.height;
  const largest = Math.max(0, ...faces.map(area));
  return faces.filter((face) => area(face) >= largest * BACKGROUND_FACE_AREA_RATIO);
}

function summary(face: DescribedFace): FaceSummary {
  return { box: face.box, score: face.score, landmarks: face.landmarks, age: face.age, gender: face.gender };
}

export async function startInteractiveWorker(context: WorkerContext): Promise<Worker> {
  const { config, blobs, gallery, db, logger } = context;
  const visionOptions = { modelsDir: config.modelsDir, pack: config.MODEL_PACK, threads: config.INFERENCE_THREADS };
  const detector = await createDetector({ ...visionOptions, detectThreshold: config.DETECT_THRESHOLD });
  const describer = await createDescriber(visionOptions);
  const limits = imageLimits(config);

  /**
   * Decodes and describes every face, in original-image pixels, with each face's aligned crop when
   * asked (cut here, where the pixels are); image errors come back as a code.
   */
  async function describeImage(imageKey: string, crops = false): Promise<(DescribedFace & { crop?: Buffer })[] | ImageError> {
    try {
      const prepared = await prepareImage(await blobs.get(imageKey), limits);
      const faces = await describer.describe(prepared.image, foregroundFaces(await detector.detect(prepared.image)));
      const cropped = crops ? await Promise.all(faces.map(async (face) => ({ ...face, crop: await encodeFaceCrop(prepared.image, face.landmarks) }))) : faces;
      return scaleFaces(cropped, 1 / prepared.scale);
    } catch (error) {
      if (error instanceof ImageError) return error;
      throw error;
    }
  }

  return startQueueWorker<typeof INTERACTIVE_QUEUE, InteractiveResult[keyof InteractiveResult]>(
    INTERACTIVE_QUEUE,
    {
      async enrol({ personId, merchantId, faceId, imageKey }): Promise<InteractiveResult['enrol']> {
        const faces = await describeImage(imageKey, await keepsFaceCrops(db, merchantId));
        if (faces instanceof ImageError) return { ok: false, code: faces.code, message: faces.message };
        if (faces.length === 0) return { ok: false, code: 'no_face', message: 'no face was found in the image' };
        if (faces.length > 1) {
          return { ok: false, code: 'multiple_faces', message: `${faces.length} faces were found; enrol a photo of one person` };
        }
        const [face] = faces;
        // The row first: if the person was erased meanwhile, its foreign key fails and no vector is left behind.
        await db('person_faces')
          .insert({ id: faceId, person_id: personId, blob_key: imageKey, pack: describer.pack, face: JSON.stringify(summary(face)) })
          .onConflict('id')
          .ignore();
        if (face.crop) await blobs.put(faceCropKey(merchantId, faceId), face.crop);
        await gallery.upsert('member', merchantId, personId, faceId, face.embedding);
        // Erased between the insert and the upsert: erasure ran before the vector existed, so erase it now.
        if (!(await db('people').where({ id: personId }).first('id'))) {
          await gallery.deleteSubject('member', merchantId, personId);
          await blobs.delete(faceCropKey(merchantId, faceId));
          return { ok: false, code: 'person_erased', message: 'the person was erased while the face was being enrolled' };
        }
        // A reembed may have switched packs while this (old-pack) worker was still running.
        await queueCatchUpIfSwitched(context, describer.pack).catch((error) =>
          logger.error({ err: (error as Error).message, faceId }, 'could not check the active pack after enrolment'),
        );
        return { ok: true, faceId, face: summary(face) };
      },
      async identify({ merchantId, imageKey, limit }): Promise<InteractiveResult['identify']> {
        const faces = await describeImage(imageKey);
        if (faces instanceof ImageError) return { ok: false, code: faces.code, message: faces.message };
        const hits = await gallery.search('member', merchantId, faces.map((face) => face.embedding), limit);
        return {
          ok: true,
          faces: faces.map((face, i) => ({
            ...summary(face),
            matches: hits[i].filter((hit) => hit.similarity >= config.MEMBER_THRESHOLD).map((hit) => ({ personId: hit.subjectId, similarity: hit.similarity })),
          })),
        };
      },
    },
    workerDeps(context),
    { concurrency: 1 },
  );
}
