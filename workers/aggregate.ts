/** Stage 5: faces and sightings into MySQL, visits and rollups, perks, capture done — in one transaction. */
import type { StageDefinition } from '../src/queue/stage-worker.js';
import { deleteWorkFiles, readFaces } from '../src/storage/work-files.js';
import type { WorkerContext } from './context.js';

export function aggregateStage({ blobs, pipeline }: WorkerContext): StageDefinition<'aggregate'> {
  return {
    stage: 'aggregate',
    concurrency: 2,
    async handle({ captureId, run, facesKey, matches }) {
      const faces = await readFaces(blobs, facesKey);
      await pipeline.saveResults({ captureId, run, faces, matches }, async () => {});
      await deleteWorkFiles(blobs, captureId, run);
    },
  };
}
