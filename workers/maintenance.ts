/** Scheduled housekeeping on its own queue: the sweeper of stuck captures, and retention. */
import { Worker } from 'bullmq';
import { MAINTENANCE_QUEUE } from '../src/queue/contract.js';
import { purgeProcessedImages, purgeStaleVisitors } from '../src/services/retention.js';
import { sweepStuckCaptures } from '../src/services/sweeper.js';
import type { WorkerContext } from './context.js';

const STAGED_FILE_MAX_AGE_MS = 24 * 3600_000;

export async function startMaintenanceWorker(context: WorkerContext): Promise<Worker> {
  const { config, queues, logger } = context;
  const queue = queues.queue(MAINTENANCE_QUEUE);
  const schedule = (name: string, every: number) =>
    queue.upsertJobScheduler(name, { every }, { name, opts: { removeOnComplete: 100, removeOnFail: 100 } });
  await schedule('sweep', config.SWEEP_INTERVAL_MS);
  await schedule('retention', config.RETENTION_INTERVAL_MS);

  const jobs: Record<string, () => Promise<object>> = {
    sweep: async () => ({ restarted: await sweepStuckCaptures(context, config.SWEEP_STALE_MS) }),
    retention: async () => ({
      imagesDeleted: config.KEEP_IMAGES ? 0 : await purgeProcessedImages(context),
      visitorsPurged: await purgeStaleVisitors(context, config.VISITOR_RETENTION_DAYS),
      // An upload takes seconds to stage and record: a day-old staged file was left by a crash.
      stagedFilesDeleted: await context.blobs.sweepStaged(STAGED_FILE_MAX_AGE_MS),
    }),
  };
  const worker = new Worker(
    MAINTENANCE_QUEUE,
    async (job) => {
      const run = jobs[job.name];
      if (!run) throw new Error(`unknown maintenance job ${job.name}`);
      const result = await run();
      logger.info({ job: job.name, ...result }, 'maintenance done');
      return result;
    },
    { connection: queues.connection, prefix: config.QUEUE_PREFIX, concurrency: 1 },
  );
  worker.on('error', (error) => logger.error({ err: error.message }, 'maintenance worker error'));
  return worker;
}
