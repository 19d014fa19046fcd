/** The aggregate queue: a capture's results into MySQL in one transaction (see ResultsService), then its webhooks. */
import type { PipelineDefinition } from '../src/queue/pipeline-worker.js';
import { dropOneVisitCrops } from '../src/services/face-crops.js';
import { ResultsService } from '../src/services/results.js';
import { queueRecognitionEvents } from '../src/services/webhooks.js';
import type { WorkerContext } from './context.js';

export function aggregateStage({ config, db, blobs, queues, lifecycle, metrics }: WorkerContext): PipelineDefinition<'aggregate'> {
  const results = new ResultsService(db, lifecycle, {
    visitGapMinutes: config.VISIT_GAP_MINUTES,
    perks: { points: config.PERK_POINTS, cooldownMinutes: config.PERK_COOLDOWN_MINUTES },
  });
  return {
    queue: 'aggregate',
    concurrency: 2,
    async handle(payload, step) {
      const saved = await step('aggregate', () => results.save(payload));
      if (!saved) return { skipped: true };
      if (payload.cropsKept) await dropOneVisitCrops({ db, blobs }, saved.capture, saved.matches);
      // After the commit, and again on a redelivery of a saved run: the deterministic job ids deliver each once.
      await queueRecognitionEvents({ db, queues }, saved.capture, payload.run, saved.matches);
      if (!saved.alreadySaved) metrics.facesPerCapture.observe(payload.faces.length);
      return { next: null };
    },
  };
}
