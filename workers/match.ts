/** The match queue: members first, then visitors, else a new visitor (see MatchService). */
import { decodeEmbedding } from '../src/queue/contract.js';
import type { PackName } from '../src/vision/types.js';
import type { PipelineDefinition } from '../src/queue/pipeline-worker.js';
import { MatchService } from '../src/services/matching.js';
import { rejectedEmbeddings } from '../src/storage/repositories/rejections.js';
import { MergeSuggestionRepository } from '../src/storage/repositories/suggestions.js';
import { VisitorRepository } from '../src/storage/repositories/visitors.js';
import { galleryForPack, type WorkerContext } from './context.js';

export function matchStage(context: WorkerContext): PipelineDefinition<'match'> {
  const { config, db, lifecycle, metrics } = context;
  const visitors = new VisitorRepository(db);
  const suggestions = new MergeSuggestionRepository(db);
  const matchers = new Map<PackName, MatchService>();
  /**
   * Embeddings are searched in the collections of the pack that made them: while workers switch
   * packs one process at a time, an old-pack embedding never meets new-pack vectors (nor the reverse).
   */
  const matcherFor = (pack: PackName) => {
    let matcher = matchers.get(pack);
    if (!matcher) {
      const rejections = { rejectedFor: (merchantId: string, subjectIds: string[]) => rejectedEmbeddings(db, merchantId, pack, subjectIds) };
      matcher = new MatchService(
        galleryForPack(context, pack),
        visitors,
        suggestions,
        { member: config.MEMBER_THRESHOLD, visitor: config.VISITOR_THRESHOLD, suggestion: config.SUGGESTION_THRESHOLD },
        rejections,
      );
      matchers.set(pack, matcher);
    }
    return matcher;
  };
  return {
    queue: 'match',
    // Chroma and MySQL round trips, no CPU-bound work: several captures at once.
    concurrency: 4,
    async handle({ captureId, run, merchantId, capturedAt, pack, faces, cropsKept }, step) {
      if (!(await lifecycle.advance(captureId, run, 'match'))) return { skipped: true };
      const matches = await step('match', () =>
        matcherFor(pack).matchCapture({ merchantId, captureId, capturedAt: new Date(capturedAt), embeddings: faces.map((face) => decodeEmbedding(face.embedding)) }),
      );
      for (const match of matches) {
        metrics.matchOutcomes.inc({ outcome: match.kind === 'member' ? 'member' : match.newVisitor ? 'new_visitor' : 'visitor' });
      }
      return { next: { captureId, run, faces, matches, pack, ...(cropsKept ? { cropsKept } : {}) } };
    },
  };
}
