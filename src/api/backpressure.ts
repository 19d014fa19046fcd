/**
 * Intake back-pressure: answer 429 with Retry-After instead of letting Redis grow without bound,
 * and a per-device token bucket (in Redis, so every API process shares it).
 */
import type { Redis } from 'ioredis';
import { pipelineBacklog, type Queues } from '../queue/queues.js';
import { ApiError } from './errors.js';

const DEPTH_CACHE_MS = 1000;
const REDIS_TIMEOUT_MS = 500;

/**
 * These guards fail open: with Redis slow or down, intake still records uploads in MySQL and the
 * sweeper enqueues them later, which beats refusing a robot's captures.
 */
async function orUndefined<T>(read: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), REDIS_TIMEOUT_MS)));
  try {
    return await Promise.race([read.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Throws 429 while the pipeline queues hold more than `maxDepth` waiting jobs. Depth is re-read at most once a second. */
export function queueDepthGuard(queues: Queues, maxDepth: number): () => Promise<void> {
  let depth = 0;
  let readAt = 0;
  return async () => {
    if (Date.now() - readAt > DEPTH_CACHE_MS) {
      depth = (await orUndefined(pipelineBacklog(queues))) ?? 0;
      readAt = Date.now();
    }
    if (depth > maxDepth) {
      throw new ApiError(429, 'queue_full', `the pipeline has ${depth} jobs waiting (limit ${maxDepth}); retry later`, undefined, { 'Retry-After': '30' });
    }
  };
}

// Refills `rate` tokens per second up to `burst`; takes one if it can. Returns {allowed, ms until a token}.
const TOKEN_BUCKET = `
local tokens = tonumber(redis.call('HGET', KEYS[1], 't') or ARGV[2])
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or ARGV[3])
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 't', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, wait}
`;

/**
 * A token bucket per key in Redis: throws 429 with Retry-After when `key` asks more often than
 * `perMinute` on average, allowing bursts of `burst`. Fails open when Redis is down or slow.
 */
function rateLimiter(redis: Redis, prefix: string, scope: string, limit: { perMinute: number; burst: number }, refusal: string): (key: string) => Promise<void> {
  const ratePerSecond = limit.perMinute / 60;
  return async (key) => {
    const answer = await orUndefined(redis.eval(TOKEN_BUCKET, 1, `${prefix}:ratelimit:${scope}:${key}`, ratePerSecond, limit.burst, Date.now()));
    const [allowed, waitMs] = (answer ?? [1, 0]) as [number, number];
    if (allowed !== 1) {
      throw new ApiError(429, 'rate_limited', `${refusal}; retry later`, undefined, { 'Retry-After': String(Math.max(1, Math.ceil(waitMs / 1000))) });
    }
  };
}

/** Uploads per device. */
export function deviceRateLimiter(redis: Redis, prefix: string, perMinute: number, burst: number): (deviceId: string) => Promise<void> {
  return rateLimiter(redis, prefix, 'device', { perMinute, burst }, `this device sends more than ${perMinute} uploads a minute`);
}

/**
 * Enrolments and identifies per merchant, together: they run models in the few interactive
 * workers, so one merchant must not starve the others' sign-ins.
 */
export function interactiveRateLimiter(redis: Redis, prefix: string, perMinute: number, burst: number): (merchantId: string) => Promise<void> {
  return rateLimiter(redis, prefix, 'interactive', { perMinute, burst }, `this merchant asks more than ${perMinute} enrolments and identifies a minute`);
}
