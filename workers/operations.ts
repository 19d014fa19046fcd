/**
 * The `operations` queue: operator requests too large to run inside a request. `reprocess` restarts
 * its selection a page at a time, saving its cursor and progress in the job after each page, and
 * yields (the job goes back to the delayed set) while the pipeline's backlog is above half the
 * intake limit, so a year of reprocessing never makes robots' uploads answer 429.
 */
import { DelayedError, type Job, type Worker } from 'bullmq';
import { OPERATIONS_QUEUE, type JobPayload, type ReprocessProgress } from '../src/queue/contract.js';
import { pipelineBacklog } from '../src/queue/queues.js';
import { startQueueWorker } from '../src/queue/worker.js';
import { countSelection, reprocessPage } from '../src/services/reprocess.js';
import { workerDeps, type WorkerContext } from './context.js';

export const REPROCESS_PAGE_SIZE = 200;
const BACKLOG_RETRY_MS = 5000;

export function startOperationsWorker(context: WorkerContext): Worker {
  const { db, queues, lifecycle, config } = context;
  const backlogLimit = Math.floor(config.MAX_QUEUE_DEPTH / 2);

  return startQueueWorker(
    OPERATIONS_QUEUE,
    {
      async reprocess(payload: JobPayload<'reprocess'>, job: Job): Promise<ReprocessProgress> {
        const { merchantId, selection } = payload;
        let { after } = payload;
        let progress = payload.progress ?? { total: await countSelection(db, merchantId, selection), done: 0, queued: 0, imageGone: 0 };
        await job.updateProgress(progress);
        for (;;) {
          if ((await pipelineBacklog(queues)) > backlogLimit) {
            await job.updateData({ ...payload, after, progress });
            await job.moveToDelayed(Date.now() + BACKLOG_RETRY_MS, job.token);
            throw new DelayedError();
          }
          const page = await reprocessPage({ db, queues, lifecycle }, merchantId, selection, after, REPROCESS_PAGE_SIZE);
          after = page.next;
          const done = progress.done + page.seen;
          // The count was an estimate if captures joined or left the selection meanwhile (a late upload, retention).
          const total = after ? Math.max(progress.total, done) : done;
          progress = { total, done, queued: progress.queued + page.queued, imageGone: progress.imageGone + page.imageGone };
          await job.updateProgress(progress);
          if (!after) return progress;
          await job.updateData({ ...payload, after, progress });
        }
      },
    },
    workerDeps(context),
    { concurrency: 1 },
  );
}
