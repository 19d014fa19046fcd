/** Stage 4: members first, then visitors, else a new visitor (see MatchService). */
import type { StageDefinition } from '../src/queue/stage-worker.js';
import { PermanentStageError } from '../src/queue/stage-worker.js';
import { MatchService } from '../src/services/matching.js';
import { readFaces } from '../src/storage/work-files.js';
import type { PackName } from '../src/storage/settings.js';
import { galleryForPack, type WorkerContext } from './context.js';

export function matchStage(context: WorkerContext): StageDefinition<'match'> {
  const { config, blobs, pipeline, metrics } = context;
  const matchers = new Map<PackName, MatchService>();
  /**
   * Embeddings are searched in the collections of the pack that made them: while workers switch
   * packs one process at a time, an old-pack embedding never meets new-pack vectors (nor the reverse).
   */
  const matcherFor = (pack: PackName) => {
    let matcher = matchers.get(pack);
    if (!matcher) {
      matcher = new MatchService(galleryForPack(context, pack), pipeline, { member: config.MEMBER_THRESHOLD, visitor: config.VISITOR_THRESHOLD });
      matchers.set(pack, matcher);
    }
    return matcher;
  };
  return {
    stage: 'match',
    concurrency: 4,
    async handle({ captureId, run, facesKey, pack }) {
      const capture = await pipeline.capture(captureId);
      if (!capture) throw new PermanentStageError('capture_missing', 'the capture no longer exists');
      const faces = await readFaces(blobs, facesKey);
      const matches = await matcherFor(pack ?? config.MODEL_PACK).matchCapture({
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
