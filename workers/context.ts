/** What every worker process opens once: config, MySQL, Redis queues, blobs, gallery, logger. */
import type { Knex } from 'knex';
import { loadConfig, type Config } from '../src/config.js';
import { ChromaGallery } from '../src/gallery/chroma-gallery.js';
import type { Gallery } from '../src/gallery/gallery.js';
import { createLogger, type Logger } from '../src/logger.js';
import { createPipelineMetrics, type PipelineMetrics } from '../src/metrics/pipeline-metrics.js';
import { createQueues, type Queues } from '../src/queue/queues.js';
import { BlobStore } from '../src/storage/blobs.js';
import { connectDatabase } from '../src/storage/db.js';
import { PipelineRepository } from '../src/storage/pipeline-repository.js';

export type WorkerContext = {
  config: Config;
  db: Knex;
  queues: Queues;
  blobs: BlobStore;
  gallery: Gallery;
  pipeline: PipelineRepository;
  logger: Logger;
  metrics: PipelineMetrics;
  close(): Promise<void>;
};

export function createWorkerContext(config: Config = loadConfig(), name = 'worker'): WorkerContext {
  const db = connectDatabase(config);
  const queues = createQueues(config);
  return {
    config,
    db,
    queues,
    blobs: new BlobStore(config.blobsDir),
    gallery: new ChromaGallery(config.chromaUrl, config.MODEL_PACK),
    pipeline: new PipelineRepository(db),
    logger: createLogger(config.LOG_LEVEL, name),
    metrics: createPipelineMetrics(),
    async close() {
      await queues.close();
      await db.destroy();
    },
  };
}
