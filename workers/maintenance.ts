/** Scheduled housekeeping on its own queue: the sweeper of stuck captures. */
import { Worker } from 'bullmq';
import { MAINTENANCE_QUEUE } from '../src/queue/contract.js';
import { sweepStuckCaptures } from '../src/services/sweeper.js';
import type { WorkerContext } from './context.js';

export async function startMaintenanceWorker(context: WorkerContext): Promise<Worker> {
  const { config, queues, logger } = context;
  await queues
    .queue(MAINTENANCE_QUEUE)
    .upsertJobScheduler('sweep', { every: config.SWEEP_INTERVAL_MS }, { name: 'sweep', opts: { removeOnComplete: 100, removeOnFail: 100 } });
  const worker = new Worker(
    MAINTENANCE_QUEUE,
    async (job) => {
      if (job.name === 'sweep') return { restarted: await sweepStuckCaptures(context, config.SWEEP_STALE_MS) };
      throw new Error(`unknown maintenance job ${job.name}`);
    },
    { connection: queues.connection, prefix: config.QUEUE_PREFIX, concurrency: 1 },
  );
  worker.on('error', (error) => logger.error({ err: error.message }, 'maintenance worker error'));
  return worker;
}
