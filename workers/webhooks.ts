/** Delivers merchants' webhook events from their own queue, with retries and backoff. */
import type { Worker } from 'bullmq';
import { WEBHOOK_QUEUE } from '../src/queue/contract.js';
import { startQueueWorker } from '../src/queue/worker.js';
import { deliverWebhook, findWebhook } from '../src/services/webhooks.js';
import { workerDeps, type WorkerContext } from './context.js';

export function startWebhookWorker(context: WorkerContext): Worker {
  const { db, logger } = context;
  return startQueueWorker(
    WEBHOOK_QUEUE,
    {
      async 'member.recognized'({ run: _run, ...event }, job) {
        const webhook = await findWebhook(db, event.merchantId);
        // Removed since the event was queued: nothing to deliver.
        if (!webhook) return { delivered: false };
        const status = await deliverWebhook(webhook, event, job.id!);
        logger.debug({ jobId: job.id, merchantId: webhook.merchantId, status }, 'webhook delivered');
        return { delivered: true, status };
      },
    },
    workerDeps(context),
    { concurrency: 8 },
  );
}
