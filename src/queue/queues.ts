/**
 * The producer side of the queue contract: one typed `enqueue` for every job kind, validating the
 * payload against its schema, with job ids and per-queue options from one table.
 */
import { Queue, QueueEvents, type Job, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { JOBS, jobIdOf, PIPELINE_QUEUES, type JobName, type JobPayload, type QueueName } from './contract.js';

export function redisConnection(config: Pick<Config, 'REDIS_URL'>): Redis {
  // BullMQ requires maxRetriesPerRequest: null so blocking commands survive a Redis restart.
  return new Redis(config.REDIS_URL, { maxRetriesPerRequest: null, enableReadyCheck: true });
}

/** The backoff of pipeline jobs: exponential from STAGE_BACKOFF_MS, capped at STAGE_BACKOFF_MAX_MS, computed by the workers (worker.ts). */
export const CAPPED_BACKOFF = 'capped-exponential';

export type RetryPolicy = Pick<Config, 'STAGE_ATTEMPTS' | 'STAGE_BACKOFF_MS' | 'STAGE_BACKOFF_MAX_MS'>;

/** Delay before retry number `attemptsMade` of a pipeline job. */
export function cappedBackoffMs(policy: RetryPolicy, attemptsMade: number): number {
  return Math.min(policy.STAGE_BACKOFF_MAX_MS, policy.STAGE_BACKOFF_MS * 2 ** Math.max(0, attemptsMade - 1));
}

/** Retention and retries per queue. */
export function queueJobOptions(policy: RetryPolicy): Record<QueueName, JobsOptions> {
  const pipeline: JobsOptions = {
    attempts: policy.STAGE_ATTEMPTS,
    backoff: { type: CAPPED_BACKOFF },
    removeOnComplete: { age: 24 * 3600, count: 10_000 },
    removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
  };
  return {
    ...(Object.fromEntries(PIPELINE_QUEUES.map((queue) => [queue, pipeline])) as Record<(typeof PIPELINE_QUEUES)[number], JobsOptions>),
    // A synchronous caller retries on its own; a late second attempt would answer nobody.
    interactive: { attempts: 1, removeOnComplete: { age: 3600, count: 1000 }, removeOnFail: { age: 24 * 3600, count: 1000 } },
    reembed: { attempts: 3, backoff: { type: 'exponential', delay: 30_000 }, removeOnComplete: { age: 30 * 86_400, count: 100 }, removeOnFail: { age: 30 * 86_400, count: 100 } },
    // Transient faults only (a page is idempotent): retried for as long as a pipeline job.
    operations: { attempts: policy.STAGE_ATTEMPTS, backoff: { type: CAPPED_BACKOFF }, removeOnComplete: { age: 30 * 86_400, count: 1000 }, removeOnFail: { age: 30 * 86_400, count: 1000 } },
    webhooks: { attempts: 8, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: { age: 24 * 3600, count: 10_000 }, removeOnFail: { age: 7 * 24 * 3600, count: 10_000 } },
  };
}

/** Pipeline jobs waiting to run (waiting, delayed or prioritised), over every pipeline queue. */
export async function pipelineBacklog(queues: Queues): Promise<number> {
  const counts = await Promise.all(PIPELINE_QUEUES.map((queue) => queues.queue(queue).getJobCountByTypes('waiting', 'delayed', 'prioritized')));
  return counts.reduce((sum, count) => sum + count, 0);
}

export type Queues = {
  /** Validates `payload` and adds it to its job's queue; a deterministic job id makes a repeat a no-op. */
  enqueue<N extends JobName>(name: N, payload: JobPayload<N>): Promise<Job>;
  enqueueMany<N extends JobName>(name: N, payloads: JobPayload<N>[]): Promise<Job[]>;
  queue(name: QueueName): Queue;
  events(name: QueueName): QueueEvents;
  readonly prefix: string;
  readonly connection: Redis;
  close(): Promise<void>;
};

/** Lazily opened producers (and event listeners) for every queue, sharing one Redis connection. */
export function createQueues(config: Pick<Config, 'REDIS_URL' | 'QUEUE_PREFIX'> & RetryPolicy): Queues {
  if (!config.QUEUE_PREFIX) throw new Error('no queue prefix: resolve it with withQueuePrefix() first');
  const connection = redisConnection(config);
  const queues = new Map<QueueName, Queue>();
  const events = new Map<QueueName, QueueEvents>();
  const options = queueJobOptions(config);
  const queue = (name: QueueName) => {
    let opened = queues.get(name);
    if (!opened) {
      opened = new Queue(name, { connection, prefix: config.QUEUE_PREFIX, defaultJobOptions: options[name] });
      queues.set(name, opened);
    }
    return opened;
  };
  const job = <N extends JobName>(name: N, payload: JobPayload<N>) => {
    const data = JOBS[name].payload.parse(payload) as JobPayload<N>;
    const jobId = jobIdOf(name, data);
    return { name, data, opts: jobId ? { jobId } : {} };
  };
  return {
    connection,
    prefix: config.QUEUE_PREFIX,
    queue,
    async enqueue(name, payload) {
      const { data, opts } = job(name, payload);
      return queue(JOBS[name].queue).add(name, data, opts);
    },
    async enqueueMany(name, payloads) {
      if (payloads.length === 0) return [];
      return queue(JOBS[name].queue).addBulk(payloads.map((payload) => job(name, payload)));
    },
    events(name) {
      let listener = events.get(name);
      if (!listener) {
        // QueueEvents blocks on XREAD, so it needs a connection of its own.
        listener = new QueueEvents(name, { connection: redisConnection(config), prefix: config.QUEUE_PREFIX });
        events.set(name, listener);
      }
      return listener;
    },
    async close() {
      await Promise.all([...events.values()].map((listener) => listener.close()));
      await Promise.all([...queues.values()].map((opened) => opened.close()));
      connection.disconnect();
    },
  };
}
