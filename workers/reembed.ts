/**
 * Model-pack migration: embeds every enrolled member face into another pack's collections from the
 * stored enrolment images, then makes that pack the active one. Recognition keeps using the old pack
 * (whose collections stay complete) until the switch, and workers restart on the new pack after it
 * (workers/runner.ts), so no search ever compares vectors of two embedding spaces.
 *
 * Resumable and idempotent: what is missing is computed from the target collections themselves (a
 * vector id is the person_faces id), so a retried job continues where the last attempt stopped and a
 * face is never stored twice. Enrolments made by old-pack workers while the job runs are picked up
 * by further passes, one of them after the switch; later stragglers queue a catch-up job
 * (workers/interactive.ts).
 */
import { UnrecoverableError, type Job, type Worker } from 'bullmq';
import { REEMBED_QUEUE, type JobPayload, type ReembedProgress, type ReembedResult } from '../src/queue/contract.js';
import { startQueueWorker } from '../src/queue/worker.js';
import { ImageError } from '../src/imaging/errors.js';
import { imageLimits, prepareImage } from '../src/imaging/prepare.js';
import { activePack, setActivePack, type PackName } from '../src/storage/settings.js';
import type { Knex } from 'knex';
import type { Gallery } from '../src/gallery/gallery.js';
import type { BlobStore } from '../src/storage/blobs.js';
import { createDescriber, createDetector, ModelFileError, verifyModels, type PackDescriber, type PackDetector } from '../src/vision/index.js';
import { galleryForPack, workerDeps, type WorkerContext } from './context.js';

type FaceRow = { faceId: string; personId: string; merchantId: string; blobKey: string };

const MAX_REPORTED_FAILURES = 100;
/** Enrolments keep arriving while the job runs; after this many passes it switches anyway (the pass after the switch still runs). */
const MAX_PASSES_BEFORE_SWITCH = 5;

/** The target pack's models, once its files are checked: a missing file fails the job for good. */
async function loadPackModels(config: WorkerContext['config'], target: PackName): Promise<{ detector: PackDetector; describer: PackDescriber }> {
  try {
    verifyModels(config.modelsDir, target);
  } catch (error) {
    // Copying the files in and retrying the job (Bull Board) is the fix; backoff retries would not help.
    if (error instanceof ModelFileError) throw new UnrecoverableError(`pack ${target} is not installed: ${error.message}`);
    throw error;
  }
  const visionOptions = { modelsDir: config.modelsDir, pack: target, threads: config.INFERENCE_THREADS };
  const detector = await createDetector({ ...visionOptions, detectThreshold: config.DETECT_THRESHOLD });
  const describer = await createDescriber(visionOptions).catch(async (error) => {
    await detector.release();
    throw error;
  });
  return { detector, describer };
}

/** Every enrolled face, and those with no vector in the target pack yet (`skip`: known failures). */
async function missingFaces(db: Knex, gallery: Gallery, skip: ReadonlyMap<string, unknown>): Promise<{ faces: number; todo: FaceRow[] }> {
  const rows: FaceRow[] = await db('person_faces as f')
    .join('people as p', 'p.id', 'f.person_id')
    .orderBy(['f.created_at', 'f.id'])
    .select('f.id as faceId', 'f.person_id as personId', 'p.merchant_id as merchantId', 'f.blob_key as blobKey');
  const present = new Map<string, Set<string>>();
  for (const merchantId of new Set(rows.map((row) => row.merchantId))) {
    present.set(merchantId, await gallery.vectorIds('member', merchantId));
  }
  const todo = rows.filter((row) => !present.get(row.merchantId)!.has(row.faceId) && !skip.has(row.faceId));
  return { faces: rows.length, todo };
}

type Reembedder = { db: Knex; blobs: BlobStore; gallery: Gallery; detector: PackDetector; describer: PackDescriber; limits: ReturnType<typeof imageLimits>; target: PackName };

/** Embeds one enrolled face with the target pack and stores its vector: null when stored, else why not. */
async function reembedFace({ db, blobs, gallery, detector, describer, limits, target }: Reembedder, row: FaceRow): Promise<string | null> {
  if (!(await blobs.exists(row.blobKey))) return 'image_gone: the enrolment image is no longer stored';
  let prepared;
  try {
    prepared = await prepareImage(await blobs.get(row.blobKey), limits);
  } catch (error) {
    if (error instanceof ImageError) return `${error.code}: ${error.message}`;
    throw error;
  }
  const faces = await detector.detect(prepared.image);
  if (faces.length === 0) return `no_face: the ${target} detector finds no face in the enrolment image`;
  // Enrolment accepted one (foreground) face; another detector may also see background ones.
  const largest = faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a));
  const [described] = await describer.describe(prepared.image, [largest]);
  await gallery.upsert('member', row.merchantId, row.personId, row.faceId, described.embedding);
  // The person may have been erased while we worked: erasure ran before our upsert, so redo it.
  if (!(await db('people').where({ id: row.personId }).first('id'))) {
    await gallery.deleteSubject('member', row.merchantId, row.personId);
  }
  return null;
}

export async function startReembedWorker(context: WorkerContext): Promise<Worker> {
  const { config, blobs, db, logger } = context;
  const limits = imageLimits(config);

  async function reembed({ pack: target, catchUp = false }: JobPayload<'reembed'>, job: Job): Promise<ReembedResult> {
    const { detector, describer } = await loadPackModels(config, target);
    const log = logger.child({ jobId: job.id, pack: target, catchUp });
    const gallery = galleryForPack(context, target);
    const reembedder: Reembedder = { db, blobs, gallery, detector, describer, limits, target };
    const failed = new Map<string, { personId: string; reason: string }>();
    let reembedded = 0;
    try {
      let faces = 0;
      let alreadyPresent = 0;
      let switched = false;
      for (let pass = 1; ; pass++) {
        const state = await missingFaces(db, gallery, failed);
        faces = state.faces;
        if (pass === 1) alreadyPresent = state.faces - state.todo.length;
        const switchNow = !catchUp && !switched && (state.todo.length === 0 || pass > MAX_PASSES_BEFORE_SWITCH);
        if (switchNow) {
          await setActivePack(db, target);
          switched = true;
          log.info({ reembedded, failed: failed.size }, 'reembed complete: active pack switched');
          // One more pass: an old-pack enrolment that read the setting just before the switch is in the table by now.
          continue;
        }
        if (state.todo.length === 0) {
          const failures = [...failed].slice(0, MAX_REPORTED_FAILURES).map(([faceId, f]) => ({ faceId, ...f }));
          return { pack: target, faces, alreadyPresent, reembedded, failed: failures, failedCount: failed.size, switched };
        }
        log.info({ pass, todo: state.todo.length, faces }, 'reembed pass');
        for (const [index, row] of state.todo.entries()) {
          const reason = await reembedFace(reembedder, row);
          if (reason) {
            failed.set(row.faceId, { personId: row.personId, reason });
            log.warn({ faceId: row.faceId, personId: row.personId, reason }, 'face not re-embedded');
          } else reembedded++;
          const progress: ReembedProgress = { pass, done: index + 1, total: state.todo.length, failed: failed.size };
          await job.updateProgress(progress);
        }
        if (switched && pass > MAX_PASSES_BEFORE_SWITCH * 2) {
          throw new Error('enrolments keep arriving in the old pack after the switch; the job is retried');
        }
      }
    } finally {
      await detector.release();
      await describer.release();
    }
  }

  const worker = startQueueWorker(REEMBED_QUEUE, { reembed }, workerDeps(context), { concurrency: 1, lockDuration: config.JOB_LOCK_MS });
  worker.on('failed', (job, error) => logger.error({ jobId: job?.id, err: error.message }, 'reembed job failed'));
  return worker;
}

/**
 * Called after an enrolment stored its vector in `pack`: when the active pack is another one by now
 * (a reembed switched meanwhile), queue a catch-up so the face reaches the active pack too.
 */
export async function queueCatchUpIfSwitched(context: WorkerContext, pack: PackName): Promise<void> {
  const active = await activePack(context.db, context.config.MODEL_PACK);
  if (active === pack) return;
  await context.queues.enqueue('reembed', { pack: active, catchUp: true });
  context.logger.info({ enrolledIn: pack, active }, 'enrolled in a pack that is no longer active; catch-up reembed queued');
}
