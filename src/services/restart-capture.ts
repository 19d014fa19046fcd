import type { Knex } from 'knex';
import { stageJobId } from '../queue/contract.js';
import type { Queues } from '../queue/queues.js';

/**
 * Starts a capture over from preprocess under run `run + 1`. The compare-and-set on `run` makes
 * two concurrent restarters (sweeper, reprocess) enqueue it once; jobs of the older run then skip.
 */
export async function restartCapture(deps: { db: Knex; queues: Queues }, capture: { id: string; run: number }, onlyIfOpen = false): Promise<boolean> {
  const { db, queues } = deps;
  const run = capture.run + 1;
  const claim = db('captures').where({ id: capture.id, run: capture.run });
  if (onlyIfOpen) claim.whereIn('status', ['queued', 'processing']);
  const claimed = await claim.update({
    run,
    status: 'queued',
    stage: 'preprocess',
    error_code: null,
    error_message: null,
    updated_at: db.raw('CURRENT_TIMESTAMP(3)'),
  });
  if (claimed === 0) return false;
  const payload = { captureId: capture.id, run };
  await queues.queue('preprocess').add('preprocess', payload, { jobId: stageJobId('preprocess', payload) });
  return true;
}
