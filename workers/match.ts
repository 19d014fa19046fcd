/** Stage 4: members first, then visitors, else a new visitor (see MatchService). */
import type { StageDefinition } from '../src/queue/stage-worker.js';
import { PermanentStageError } from '../src/queue/stage-worker.js';
import { MatchService } from '../src/services/matching.js';
import { readFaces } from '../src/storage/work-files.js';
import type { WorkerContext } from './context.js';

export function matchStage({ config, blobs, gallery, pipeline, metrics }: WorkerContext): StageDefinition<'match'> {
  const matcher = new MatchService(gallery, pipeline, { member: config.MEMBER_THRESHOLD, visitor: config.VISITOR_THRESHOLD });
  return {
    stage: 'match',
    concurrency: 4,
    async handle({ captureId, run, facesKey }) {
      const capture = await pipeline.capture(captureId);
      if (!capture) throw new PermanentStageError('capture_missing', 'the capture no longer exists');
      const faces = await readFaces(blobs, facesKey);
      const matches = await matcher.matchCapture({
        merchantId: capture.merchant_id,
        captureId,
        capturedAt: capture.captured_at,
        embeddings: faces.map((face) => face.embedding),
      });
      for (const match of matches) {
        metrics.matchOutcomes.inc({ outcome: match.kind === 'member' ? 'member' : match.newVisitor ? 'new_visitor' : 'visitor' });
      }
      return { captureId, run, facesKey, matches };
    },
  };
}
