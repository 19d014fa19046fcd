/**
 * MySQL is the source of truth for a capture's state; Redis may lose its jobs (a restart without
 * persistence). The sweeper finds captures stuck in a non-final state with no live job and runs
 * them again from the start under a new run number (every stage is idempotent).
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { NEXT_STAGE, stageJobId, type Stage } from '../queue/contract.js';
import type { Queues } from '../queue/queues.js';
import { restartCapture } from './restart-capture.js';

const PENDING_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);
/** A capture re-run this many times is failed rather than retried forever. */
export const MAX_RUNS = 5;

type StuckCapture = { id: string; stage: Stage; run: number };

export async function sweepStuckCaptures(deps: { db: Knex; queues: Queues; logger: Logger }, staleMs: number, limit = 500): Promise<number> {
  const { db, queues, logger } = deps;
  const stuck = await db<StuckCapture>('captures')
    .whereIn('status', ['queued', 'processing'])
    .where('updated_at', '<', new Date(Date.now() - staleMs))
    .orderBy('updated_at')
    .limit(limit)
    .select('id', 'stage', 'run');

  let restarted = 0;
  for (const capture of stuck) {
    if (await hasPendingJob(queues, capture)) continue;
    if (capture.run + 1 >= MAX_RUNS) {
      await db('captures')
        .where({ id: capture.id, run: capture.run })
        .whereIn('status', ['queued', 'processing'])
        .update({ status: 'failed', error_code: 'retries_exhausted', error_message: `processing was restarted ${MAX_RUNS} times without finishing` });
      continue;
    }
    if (!(await restartCapture({ db, queues }, capture, true))) continue;
    logger.warn({ captureId: capture.id, run: capture.run + 1, lostAt: capture.stage }, 're-enqueued a stuck capture');
    restarted += 1;
  }
  return restarted;
}

/** The capture's current stage, or the next one it was handed to, still has a job in Redis. */
async function hasPendingJob(queues: Queues, capture: StuckCapture): Promise<boolean> {
  const stages = [capture.stage, NEXT_STAGE[capture.stage]].filter((stage): stage is Stage => stage !== null);
  for (const stage of stages) {
    const job = await queues.queue(stage).getJob(stageJobId(stage, { captureId: capture.id, run: capture.run }));
    if (job && PENDING_STATES.has(await job.getState())) return true;
  }
  return false;
}
