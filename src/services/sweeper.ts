/**
 * MySQL is the source of truth for a capture's state; Redis may lose its jobs (a restart without
 * persistence, a flush). The sweeper walks every capture left open (a keyset cursor, page by page)
 * and starts it over under a new run when it has no live job:
 * - no job of its run at all (lost with Redis, or a crash between intake and enqueue): once it has
 *   not moved for `lostMs` (an intake still enqueueing is harmless: its late job finds the run superseded);
 * - its last job gave up after all its retries (a long outage): after `staleMs × 2^run` (at most
 *   8×), so a capture that keeps meeting the same outage is retried less and less often, and never
 *   failed: only bad input fails a capture.
 */
import type { Logger } from 'pino';
import { PIPELINE_QUEUES, pipelineJobId } from '../queue/contract.js';
import type { Queues } from '../queue/queues.js';
import { OPEN_STATES, type CaptureLifecycle } from '../storage/capture-lifecycle.js';
import type { Knex } from 'knex';
import { restartCapture } from './restart-capture.js';

type OpenCapture = { id: string; run: number; updated_at: Date };
type JobTrace = 'live' | 'gave_up' | 'none';

const PAGE_SIZE = 500;
const MAX_BACKOFF_FACTOR = 8;

export type SweepResult = { examined: number; restarted: number };

export async function sweepStuckCaptures(
  deps: { db: Knex; queues: Queues; lifecycle: CaptureLifecycle; logger: Logger },
  options: { staleMs: number; lostMs: number; pageSize?: number },
): Promise<SweepResult> {
  const { db, queues, logger } = deps;
  const pageSize = options.pageSize ?? PAGE_SIZE;
  const sweepStartedAt = Date.now();
  const cutoff = new Date(sweepStartedAt - Math.min(options.staleMs, options.lostMs));
  const result: SweepResult = { examined: 0, restarted: 0 };
  let after: OpenCapture | undefined;
  for (;;) {
    const page: OpenCapture[] = await db('captures')
      .whereIn('status', OPEN_STATES)
      .where('updated_at', '<', cutoff)
      .modify((query) => {
        if (after) query.whereRaw('(updated_at, id) > (?, ?)', [after.updated_at, after.id]);
      })
      .orderBy([{ column: 'updated_at' }, { column: 'id' }])
      .limit(pageSize)
      .select('id', 'run', 'updated_at');
    if (page.length === 0) return result;
    after = page[page.length - 1];
    result.examined += page.length;
    const traces = await jobTraces(queues, page);
    for (const [i, capture] of page.entries()) {
      const trace = traces[i];
      if (trace === 'live') continue;
      const waitMs = trace === 'none' ? options.lostMs : options.staleMs * Math.min(MAX_BACKOFF_FACTOR, 2 ** capture.run);
      if (sweepStartedAt - capture.updated_at.getTime() < waitMs) continue;
      if (!(await restartCapture(deps, capture, { onlyIfOpen: true }))) continue;
      logger.warn({ captureId: capture.id, run: capture.run + 1, lastJob: trace }, 're-enqueued a stuck capture');
      result.restarted += 1;
    }
    if (page.length < pageSize) return result;
  }
}

/**
 * For each capture, what Redis holds of its run's pipeline jobs, read in one round trip: a job that
 * exists and has not finished is live; one finished without a return value gave up (BullMQ keeps
 * failed jobs for days); nothing at all means the run was lost.
 */
async function jobTraces(queues: Queues, captures: OpenCapture[]): Promise<JobTrace[]> {
  const batch = queues.connection.pipeline();
  for (const capture of captures) {
    for (const queue of PIPELINE_QUEUES) {
      const jobId = pipelineJobId(queue, { captureId: capture.id, run: capture.run });
      batch.hmget(queues.queue(queue).toKey(jobId), 'timestamp', 'finishedOn', 'returnvalue');
    }
  }
  const replies = (await batch.exec()) ?? [];
  return captures.map((_, i) => {
    let trace: JobTrace = 'none';
    for (let q = 0; q < PIPELINE_QUEUES.length; q++) {
      const [error, fields] = replies[i * PIPELINE_QUEUES.length + q] ?? [];
      if (error) throw error;
      const [createdAt, finishedOn, returnValue] = fields as (string | null)[];
      if (createdAt === null) continue;
      if (finishedOn === null) return 'live';
      if (returnValue === null) trace = 'gave_up';
    }
    return trace;
  });
}
