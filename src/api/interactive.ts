/**
 * Synchronous calls into the workers (enrolment, identify): the API never runs inference, so it
 * adds a job to the interactive queue and waits for its result through QueueEvents.
 */
import { INTERACTIVE_QUEUE, type JobPayload, type JobsOf, type InteractiveResult } from '../queue/contract.js';
import type { Queues } from '../queue/queues.js';
import { ApiError } from './errors.js';

const REDIS_TIMEOUT_MS = 3000;

export async function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(onTimeout()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const queueUnavailable = () => new ApiError(503, 'queue_unavailable', 'the job queue (Redis) is unavailable, retry later', undefined, { 'Retry-After': '5' });

export async function runInteractive<J extends JobsOf<typeof INTERACTIVE_QUEUE>>(
  queues: Queues,
  name: J,
  payload: JobPayload<J>,
  timeoutMs: number,
): Promise<InteractiveResult[J]> {
  const events = queues.events(INTERACTIVE_QUEUE);
  await withTimeout(events.waitUntilReady(), REDIS_TIMEOUT_MS, queueUnavailable);
  const job = await withTimeout(queues.enqueue(name, payload), REDIS_TIMEOUT_MS, queueUnavailable);
  try {
    return (await job.waitUntilFinished(events, timeoutMs)) as InteractiveResult[J];
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/timed out/i.test(message)) {
      // Nobody picked it up in time: withdraw it so it does not run after the caller gave up.
      await job.remove().catch(() => undefined);
      throw new ApiError(503, 'timeout', `no worker answered within ${Math.round(timeoutMs / 1000)}s; retry later`, undefined, { 'Retry-After': '5' });
    }
    throw new ApiError(503, 'worker_failed', `the worker could not process the image: ${message.slice(0, 200)}`);
  }
}
