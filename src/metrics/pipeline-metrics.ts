import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Metrics a worker process records; published to Redis and summed across processes by the API's /metrics. */
export type PipelineMetrics = {
  registry: Registry;
  stageDuration: Histogram<'stage' | 'outcome'>;
  inference: Histogram<'model'>;
  facesPerCapture: Histogram;
  matchOutcomes: Counter<'outcome'>;
};

export function createPipelineMetrics(): PipelineMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'faceperks_worker_' });
  return {
    registry,
    stageDuration: new Histogram({
      name: 'faceperks_stage_duration_seconds',
      help: 'Time a stage job spent in its handler, by stage and outcome (ok, retry, failed)',
      labelNames: ['stage', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    inference: new Histogram({
      name: 'faceperks_inference_duration_seconds',
      help: 'Model inference time per image (detect, landmarks) or per face (align, embed, attributes)',
      labelNames: ['model'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    }),
    facesPerCapture: new Histogram({
      name: 'faceperks_faces_per_capture',
      help: 'Faces found per processed capture',
      buckets: [0, 1, 2, 3, 5, 8, 13, 21],
      registers: [registry],
    }),
    matchOutcomes: new Counter({
      name: 'faceperks_match_outcomes_total',
      help: 'Matched faces by outcome: member, visitor (returning), new_visitor',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
}

/** Observes what cumulative millisecond counters grew by since the previous call. */
export function timingsObserver(histogram: Histogram<'model'>, read: () => Record<string, number>, models: string[]): (per?: number) => void {
  let last = { ...read() };
  return (per = 1) => {
    const now = read();
    for (const model of models) {
      const delta = (now[model] ?? 0) - (last[model] ?? 0);
      if (per > 0 && delta > 0) histogram.observe({ model }, delta / 1000 / per);
    }
    last = { ...now };
  };
}
