/**
 * What every worker process opens once: config, MySQL, Redis queues, blobs, gallery, logger.
 * `config.MODEL_PACK` of a worker context is the *active* pack (see src/storage/settings.ts), which
 * `openWorkerContext` resolves at start; the runner restarts the process when it changes.
 */
import type { Knex } from 'knex';
import { loadConfig, type Config } from '../src/config.js';
import { ChromaGallery } from '../src/gallery/chroma-gallery.js';
import type { Gallery } from '../src/gallery/gallery.js';
import { createLogger, type Logger } from '../src/logger.js';
import { createPipelineMetrics, type PipelineMetrics } from '../src/metrics/pipeline-metrics.js';
import { createQueues, type Queues } from '../src/queue/queues.js';
import { openBlobStore, type BlobStore } from '../src/storage/blobs.js';
import { connectDatabase } from '../src/storage/db.js';
import { CaptureLifecycle } from '../src/storage/capture-lifecycle.js';
import { activePack, withQueuePrefix, type PackName } from '../src/storage/settings.js';
import type { WorkerDeps } from '../src/queue/worker.js';

export type WorkerContext = {
  config: Config;
  db: Knex;
  queues: Queues;
  blobs: BlobStore;
  gallery: Gallery;
  lifecycle: CaptureLifecycle;
  logger: Logger;
  metrics: PipelineMetrics;
  close(): Promise<void>;
};

export function createWorkerContext(config: Config = loadConfig(), name = 'worker', db: Knex = connectDatabase(config)): WorkerContext {
  const queues = createQueues(config);
  return {
    config,
    db,
    queues,
    blobs: openBlobStore(config),
    gallery: new ChromaGallery(config.chromaUrl, config.MODEL_PACK),
    lifecycle: new CaptureLifecycle(db),
    logger: createLogger(config.LOG_LEVEL, name),
    metrics: createPipelineMetrics(),
    async close() {
      await queues.close();
      await db.destroy();
    },
  };
}

/** A worker context on the active pack: the stored setting (after a reembed) or else MODEL_PACK. */
export async function openWorkerContext(config: Config = loadConfig(), name = 'worker'): Promise<WorkerContext> {
  const db = connectDatabase(config);
  try {
    const pack = await activePack(db, config.MODEL_PACK);
    const context = createWorkerContext(await withQueuePrefix(db, { ...config, MODEL_PACK: pack }), name, db);
    if (pack !== config.MODEL_PACK) {
      context.logger.warn({ activePack: pack, MODEL_PACK: config.MODEL_PACK }, 'using the active pack set by the last reembed; MODEL_PACK is ignored');
    }
    return context;
  } catch (error) {
    await db.destroy();
    throw error;
  }
}

/** What every queue worker of this process is started with. */
export function workerDeps(context: WorkerContext): WorkerDeps {
  return { connection: context.queues.connection, prefix: context.config.QUEUE_PREFIX, logger: context.logger, retry: context.config };
}

const otherPackGalleries = new WeakMap<WorkerContext, Map<PackName, Gallery>>();

/** The gallery of `pack`: the context's own for its pack, else a (cached) one on that pack's collections. */
export function galleryForPack(context: WorkerContext, pack: PackName): Gallery {
  if (pack === context.config.MODEL_PACK) return context.gallery;
  let byPack = otherPackGalleries.get(context);
  if (!byPack) otherPackGalleries.set(context, (byPack = new Map()));
  let gallery = byPack.get(pack);
  if (!gallery) byPack.set(pack, (gallery = new ChromaGallery(context.config.chromaUrl, pack)));
  return gallery;
}
