/**
 * Delivers merchants' webhook events from their own queue, with retries and backoff. One merchant
 * takes at most WEBHOOK_MERCHANT_CONCURRENCY of a process's delivery slots, and a paused endpoint
 * (see recordDeliveryFailure) takes none: their jobs wait delayed, without spending an attempt,
 * so a slow or black-holed endpoint never holds up the other merchants' deliveries.
 */
import { DelayedError, type Job, type Worker } from 'bullmq';
import { WEBHOOK_QUEUE } from '../src/queue/contract.js';
import { startQueueWorker } from '../src/queue/worker.js';
import { allowListOf } from '../src/services/webhook-targets.js';
import { deliverWebhook, findWebhook, recordDeliveryFailure, recordDeliverySuccess, WebhookDeliveryError } from '../src/services/webhooks.js';
import { workerDeps, type WorkerContext } from './context.js';

const DELIVERY_SLOTS = 8;

/** Deliveries in flight per merchant, in this process. */
class MerchantSlots {
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly perMerchant: number) {}

  tryTake(merchantId: string): boolean {
    const taken = this.inFlight.get(merchantId) ?? 0;
    if (taken >= this.perMerchant) return false;
    this.inFlight.set(merchantId, taken + 1);
    return true;
  }

  release(merchantId: string): void {
    const left = (this.inFlight.get(merchantId) ?? 1) - 1;
    if (left > 0) this.inFlight.set(merchantId, left);
    else this.inFlight.delete(merchantId);
  }
}

const randomMs = (from: number, to: number) => from + Math.random() * (to - from);

/** Puts the job back in the queue, delayed until `timestamp`, without spending one of its attempts. */
async function deferUntil(job: Job, timestamp: number): Promise<never> {
  await job.moveToDelayed(Math.round(timestamp), job.token);
  throw new DelayedError();
}

export function startWebhookWorker(context: WorkerContext): Worker {
  const { db, logger, config } = context;
  const allowed = allowListOf(config.WEBHOOK_ALLOW_PRIVATE);
  const slots = new MerchantSlots(config.WEBHOOK_MERCHANT_CONCURRENCY);
  return startQueueWorker(
    WEBHOOK_QUEUE,
    {
      async 'member.recognized'({ run: _run, ...event }, job) {
        const webhook = await findWebhook(db, event.merchantId);
        // Removed since the event was queued: nothing to deliver.
        if (!webhook) return { delivered: false };
        // Jittered, so a paused endpoint's backlog does not come back all at once.
        const pausedUntil = webhook.pausedUntil?.getTime() ?? 0;
        if (pausedUntil > Date.now()) return deferUntil(job, pausedUntil + randomMs(0, 5000));
        if (!slots.tryTake(webhook.merchantId)) return deferUntil(job, Date.now() + randomMs(1000, 5000));
        try {
          const status = await deliverWebhook(webhook, event, job.id!, { allowed, timeoutMs: config.WEBHOOK_TIMEOUT_MS });
          await recordDeliverySuccess(db, webhook);
          logger.debug({ jobId: job.id, merchantId: webhook.merchantId, status }, 'webhook delivered');
          return { delivered: true, status };
        } catch (error) {
          if (error instanceof WebhookDeliveryError) await recordDeliveryFailure(db, webhook, error.message);
          throw error;
        } finally {
          slots.release(webhook.merchantId);
        }
      },
    },
    workerDeps(context),
    { concurrency: DELIVERY_SLOTS },
  );
}
