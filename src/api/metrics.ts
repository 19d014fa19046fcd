import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { QUEUE_NAMES } from '../queue/contract.js';
import type { Queues } from '../queue/queues.js';
import { withTimeout } from './interactive.js';

export type ApiMetrics = {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  uploadedFiles: Counter<'outcome'>;
  uploadedBytes: Counter;
};

/**
 * The API's Prometheus registry: default process metrics, request duration by route and status,
 * and uploaded files by outcome. Pass `registry` to add gauges of your own (queue depths...).
 */
export function createApiMetrics(registry = new Registry()): ApiMetrics {
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpDuration: new Histogram({
      name: 'faceperks_http_request_duration_seconds',
      help: 'HTTP request duration by route template and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    uploadedBytes: new Counter({
      name: 'faceperks_uploaded_bytes_total',
      help: 'Bytes of image parts accepted by POST /v1/captures (new and duplicate files)',
      registers: [registry],
    }),
    uploadedFiles: new Counter({
      name: 'faceperks_uploaded_files_total',
      help: 'Image parts received by POST /v1/captures, by outcome (new, duplicate, rejected)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
}

const JOB_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized'] as const;

/** Jobs per queue and state, read from Redis at scrape time (skipped if Redis is slow). */
export function registerQueueGauges(metrics: ApiMetrics, queues: Pick<Queues, 'queue'>): void {
  if (metrics.registry.getSingleMetric('faceperks_queue_jobs')) return;
  new Gauge({
    name: 'faceperks_queue_jobs',
    help: 'Jobs in each queue by state',
    labelNames: ['queue', 'state'],
    registers: [metrics.registry],
    async collect() {
      this.reset();
      await withTimeout(
        Promise.all(
          QUEUE_NAMES.map(async (name) => {
            const counts = await queues.queue(name).getJobCounts(...JOB_STATES);
            for (const state of JOB_STATES) this.set({ queue: name, state }, counts[state] ?? 0);
          }),
        ),
        1000,
        () => new Error('queue counts timed out'),
      ).catch(() => undefined);
    },
  });
}
