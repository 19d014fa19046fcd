import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createPipelineMetrics, timingsObserver } from '../../src/metrics/pipeline-metrics.js';
import { metricsHashKey, publishRegistry, readPublishedMetrics } from '../../src/metrics/published-registry.js';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
afterAll(() => redis.disconnect());

describe('worker metrics published through Redis', () => {
  it('sums the counters and histograms of every live worker process', async () => {
    const prefix = `fpmetrics${randomBytes(3).toString('hex')}`;
    const [a, b] = [createPipelineMetrics(), createPipelineMetrics()];
    a.matchOutcomes.inc({ outcome: 'member' }, 2);
    b.matchOutcomes.inc({ outcome: 'member' }, 3);
    b.matchOutcomes.inc({ outcome: 'new_visitor' });
    a.stageDuration.observe({ stage: 'detect', outcome: 'ok' }, 0.02);
    b.stageDuration.observe({ stage: 'detect', outcome: 'ok' }, 0.2);
    const stops = [publishRegistry(redis, prefix, 'a', a.registry), publishRegistry(redis, prefix, 'b', b.registry)];
    await new Promise((resolve) => setTimeout(resolve, 200));

    const text = await readPublishedMetrics(redis, prefix);
    stops.forEach((stop) => stop());

    expect(text).toContain('faceperks_match_outcomes_total{outcome="member"} 5');
    expect(text).toContain('faceperks_match_outcomes_total{outcome="new_visitor"} 1');
    expect(text).toContain('faceperks_stage_duration_seconds_count{stage="detect",outcome="ok"} 2');
    expect(text).toContain('faceperks_stage_duration_seconds_bucket{le="0.025",stage="detect",outcome="ok"} 1');
    expect(await readPublishedMetrics(redis, `${prefix}none`)).toBe('');
    await redis.del(metricsHashKey(prefix));
  });

  it('leaves out, and drops, the metrics of a process that stopped publishing 30 s ago', async () => {
    const prefix = `fpmetrics${randomBytes(3).toString('hex')}`;
    const live = createPipelineMetrics();
    live.matchOutcomes.inc({ outcome: 'member' }, 2);
    const gone = createPipelineMetrics();
    gone.matchOutcomes.inc({ outcome: 'member' }, 7);
    const stale = { publishedAt: Date.now() - 31_000, metrics: await gone.registry.getMetricsAsJSON() };
    await redis.hset(metricsHashKey(prefix), 'old-host:1:match', JSON.stringify(stale));
    const stop = publishRegistry(redis, prefix, 'match', live.registry);
    await new Promise((resolve) => setTimeout(resolve, 200));

    const text = await readPublishedMetrics(redis, prefix);
    stop();

    expect(text).toContain('faceperks_match_outcomes_total{outcome="member"} 2');
    expect(await redis.hexists(metricsHashKey(prefix), 'old-host:1:match')).toBe(0);
    expect(await redis.hlen(metricsHashKey(prefix))).toBe(1);
    await redis.del(metricsHashKey(prefix));
  });

  it('observes per-call deltas of cumulative model timings', async () => {
    const metrics = createPipelineMetrics();
    const timings = { detect: 0, landmarks: 0 };
    const observe = timingsObserver(metrics.inference, () => timings, ['detect', 'landmarks']);
    timings.detect += 30;
    timings.landmarks += 10;
    observe();
    timings.detect += 50;
    observe(2);
    const json = await metrics.registry.getSingleMetric('faceperks_inference_duration_seconds')!.get();
    const sum = (model: string) =>
      json.values.find((v) => (v as { metricName?: string }).metricName?.endsWith('_sum') && v.labels.model === model)?.value;
    expect(sum('detect')).toBeCloseTo(0.03 + 0.025, 10);
    expect(sum('landmarks')).toBeCloseTo(0.01, 10);
  });
});
