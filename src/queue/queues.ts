import { Queue, QueueEvents, type DefaultJobOptions } from 'bullmq';
import { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { ALL_QUEUES, type QueueName } from './contract.js';

export function redisConnection(config: Pick<Config, 'REDIS_URL'>): Redis {
  // BullMQ requires maxRetriesPerRequest: null so blocking commands survive a Redis restart.
  return new Redis(config.REDIS_URL, { maxRetriesPerRequest: null, enableReadyCheck: true });
}

export function defaultJobOptions(config: Pick<Config, 'STAGE_ATTEMPTS' | 'STAGE_BACKOFF_MS'>): DefaultJobOptions {
  return {
    attempts: config.STAGE_ATTEMPTS,
    backoff: { type: 'exponential', delay: config.STAGE_BACKOFF_MS },
    removeOnComplete: { age: 24 * 3600, count: 10_000 },
    removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
  };
}

export type Queues = {
  queue(name: QueueName): Queue;
  events(name: QueueName): QueueEvents;
  readonly connection: Redis;
  close(): Promise<void>;
};

/** Lazily opened producers (and event listeners) for every queue, sharing one Redis connection. */
export function createQueues(config: Pick<Config, 'REDIS_URL' | 'QUEUE_PREFIX' | 'STAGE_ATTEMPTS' | 'STAGE_BACKOFF_MS'>): Queues {
  const connection = redisConnection(config);
  const queues = new Map<QueueName, Queue>();
  const events = new Map<QueueName, QueueEvents>();
  const jobOptions = defaultJobOptions(config);
  return {
    connection,
    queue(name) {
      let queue = queues.get(name);
      if (!queue) {
        queue = new Queue(name, { connection, prefix: config.QUEUE_PREFIX, defaultJobOptions: jobOptions });
        queues.set(name, queue);
      }
      return queue;
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
      await Promise.all([...queues.values()].map((queue) => queue.close()));
      connection.disconnect();
    },
  };
}

export { ALL_QUEUES };
