/** Delivers merchants' webhook events from their own queue, with retries and backoff. */
import { UnrecoverableError, Worker } from 'bullmq';
import { memberRecognizedEventSchema, WEBHOOK_QUEUE } from '../src/queue/contract.js';
import { deliverWebhook, findWebhook } from '../src/services/webhooks.js';
import type { WorkerContext } from './context.js';

export function startWebhookWorker(context: WorkerContext): Worker {
  const { config, db, queues, logger } = context;
  const worker = new Worker(
    WEBHOOK_QUEUE,
    async (job) => {
      const parsed = memberRecognizedEventSchema.safeParse(job.data);
      if (!parsed.success) throw new UnrecoverableError(`invalid webhook event: ${parsed.error.issues[0]?.message}`);
      const webhook = await findWebhook(db, parsed.data.merchantId);
      // Removed since the event was queued: nothing to deliver.
      if (!webhook) return { delivered: false };
      const status = await deliverWebhook(webhook, parsed.data, job.id!);
      logger.debug({ jobId: job.id, merchantId: webhook.merchantId, status }, 'webhook delivered');
      return { delivered: true, status };
    },
    { connection: queues.connection, prefix: config.QUEUE_PREFIX, concurrency: 8 },
  );
  worker.on('error', (error) => logger.error({ err: error.message }, 'webhook worker error'));
  return worker;
}
