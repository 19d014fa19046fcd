/** Stage 5: faces and sightings into MySQL, visits and rollups, perks, capture done — in one transaction. */
import type { StageDefinition } from '../src/queue/stage-worker.js';
import { lockSubjects, recordSightings, retractCaptureSightings } from '../src/services/analytics/index.js';
import { awardPerk } from '../src/services/perks.js';
import { queueRecognitionEvents } from '../src/services/webhooks.js';
import { deleteWorkFiles, readFaces } from '../src/storage/work-files.js';
import type { WorkerContext } from './context.js';

export function aggregateStage({ config, blobs, pipeline, metrics, db, queues }: WorkerContext): StageDefinition<'aggregate'> {
  const perks = { points: config.PERK_POINTS, cooldownMinutes: config.PERK_COOLDOWN_MINUTES };
  return {
    stage: 'aggregate',
    concurrency: 2,
    async handle({ captureId, run, facesKey, matches }) {
      const faces = await readFaces(blobs, facesKey);
      const { capture } = await pipeline.saveResults(
        { captureId, run, faces, matches },
        {
          lock: (trx, subjects) => lockSubjects(trx, subjects),
          retract: (trx, id) => retractCaptureSightings(trx, id, { visitGapMinutes: config.VISIT_GAP_MINUTES }),
          async recorded(trx, sightings) {
            await recordSightings(trx, sightings, { visitGapMinutes: config.VISIT_GAP_MINUTES });
            for (const sighting of sightings) {
              if (sighting.subjectKind !== 'member') continue;
              await awardPerk(trx, { personId: sighting.subjectId, storeId: sighting.storeId, captureId, faceIndex: sighting.faceIndex, seenAt: sighting.seenAt }, perks);
            }
          },
        },
      );
      // After the commit, and again on a redelivery: the deterministic job ids deliver each once.
      if (capture) await queueRecognitionEvents({ db, queues }, capture, run, matches);
      metrics.facesPerCapture.observe(faces.length);
      await deleteWorkFiles(blobs, captureId, run);
    },
  };
}
