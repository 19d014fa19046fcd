/**
 * The consumer side of the queue contract: a BullMQ worker for one queue with a handler for every
 * job kind the contract puts on it (checked at start-up), each receiving its validated payload.
 */
import { UnrecoverableError, Worker, type Job, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { JOBS, jobNamesOf, type JobName, type JobPayload, type JobsOf, type QueueName } from './contract.js';
import { cappedBackoffMs, type RetryPolicy } from './queues.js';

export type JobHandler<N extends JobName, R> = (payload: JobPayload<N>, job: Job<JobPayload<N>, R, N>) => Promise<R>;
export type QueueHandlers<Q extends QueueName, R> = { [N in JobsOf<Q>]: JobHandler<N, R> };

export type WorkerDeps = { connection: Redis; prefix: string; logger: Logger; retry: RetryPolicy };

export function startQueueWorker<Q extends QueueName, R>(
  queue: Q,
  handlers: QueueHandlers<Q, R>,
  deps: WorkerDeps,
  options: Omit<WorkerOptions, 'connection' | 'prefix'> = {},
): Worker<unknown, R> {
  const byName = handlers as unknown as Record<string, JobHandler<JobName, R> | undefined>;
  const missing = jobNamesOf(queue).filter((name) => typeof byName[name] !== 'function');
  if (missing.length > 0) throw new Error(`queue ${queue} has no handler for ${missing.join(', ')}`);

  const worker = new Worker<unknown, R>(
    queue,
    async (job: Job) => {
      const handler = byName[job.name];
      const schema = JOBS[job.name as JobName]?.payload;
      if (!handler || !schema) throw new UnrecoverableError(`queue ${queue} has no job kind ${job.name}`);
      const parsed = schema.safeParse(job.data);
      if (!parsed.success) throw new UnrecoverableError(`invalid ${job.name} payload: ${parsed.error.issues[0]?.message}`);
      return handler(parsed.data as JobPayload<JobName>, job as Job<JobPayload<JobName>, R, JobName>);
    },
    {
      ...options,
      connection: deps.connection,
      prefix: deps.prefix,
      // Built-in backoff types never reach this; jitter spreads the retries of an outage's backlog.
      settings: { backoffStrategy: (attemptsMade) => Math.round(cappedBackoffMs(deps.retry, attemptsMade) * (0.8 + 0.4 * Math.random())) },
    },
  );
  worker.on('error', (error) => deps.logger.error({ queue, err: error.message }, 'worker error'));
  return worker;
}
