import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export type ApiMetrics = {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  uploadedFiles: Counter<'outcome'>;
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
    uploadedFiles: new Counter({
      name: 'faceperks_uploaded_files_total',
      help: 'Image parts received by POST /v1/captures, by outcome (new, duplicate, rejected)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
}
