/**
 * Worker processes may run on many machines: each publishes its metrics as JSON into Redis with a
 * short expiry, and /metrics sums whatever is live (prom-client's AggregatorRegistry.aggregate).
 */
import os from 'node:os';
import type { Redis } from 'ioredis';
import { AggregatorRegistry, type Registry } from 'prom-client';

const TTL_SECONDS = 30;

const keyPrefix = (queuePrefix: string) => `${queuePrefix}:metrics:`;

export function publishRegistry(redis: Redis, queuePrefix: string, name: string, registry: Registry, everyMs = 5000): () => void {
  const key = `${keyPrefix(queuePrefix)}${os.hostname()}:${process.pid}:${name}`;
  const publish = async () => {
    const metrics = await registry.getMetricsAsJSON();
    await redis.set(key, JSON.stringify(metrics), 'EX', TTL_SECONDS).catch(() => undefined);
  };
  void publish();
  const timer = setInterval(() => void publish(), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

export async function readPublishedMetrics(redis: Redis, queuePrefix: string): Promise<string> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${keyPrefix(queuePrefix)}*`, 'COUNT', 200);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  if (keys.length === 0) return '';
  const values = (await redis.mget(keys)).filter((value): value is string => value !== null);
  return AggregatorRegistry.aggregate(values.map((value) => JSON.parse(value))).metrics();
}
