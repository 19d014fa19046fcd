/**
 * Worker processes may run on many machines: each publishes its metrics as JSON into one Redis hash
 * per queue prefix, stamped with the time, and /metrics sums the entries published within the last
 * 30 s (prom-client's AggregatorRegistry.aggregate). One hash rather than a key per process: a
 * read is one HGETALL, where a pattern SCAN had to walk every job key of the queues (tens of
 * thousands) on each scrape. Entries of processes that stopped publishing are dropped as they are read.
 */
import os from 'node:os';
import type { Redis } from 'ioredis';
import { AggregatorRegistry, type Registry } from 'prom-client';

const TTL_MS = 30_000;
/** The hash outlives a fleet that stopped entirely by this long, then Redis drops it. */
const HASH_TTL_SECONDS = 24 * 3600;

type Published = { publishedAt: number; metrics: Awaited<ReturnType<Registry['getMetricsAsJSON']>> };

export const metricsHashKey = (queuePrefix: string) => `${queuePrefix}:metrics`;

export function publishRegistry(redis: Redis, queuePrefix: string, name: string, registry: Registry, everyMs = 5000): () => void {
  const hash = metricsHashKey(queuePrefix);
  const field = `${os.hostname()}:${process.pid}:${name}`;
  const publish = async () => {
    const entry: Published = { publishedAt: Date.now(), metrics: await registry.getMetricsAsJSON() };
    await redis.multi().hset(hash, field, JSON.stringify(entry)).expire(hash, HASH_TTL_SECONDS).exec().catch(() => undefined);
  };
  void publish();
  const timer = setInterval(() => void publish(), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

export async function readPublishedMetrics(redis: Redis, queuePrefix: string): Promise<string> {
  const hash = metricsHashKey(queuePrefix);
  const live: Published['metrics'][] = [];
  const stale: string[] = [];
  for (const [field, value] of Object.entries(await redis.hgetall(hash))) {
    const entry = JSON.parse(value) as Published;
    if (Date.now() - entry.publishedAt > TTL_MS) stale.push(field);
    else live.push(entry.metrics);
  }
  if (stale.length > 0) await redis.hdel(hash, ...stale);
  if (live.length === 0) return '';
  return AggregatorRegistry.aggregate(live).metrics();
}
