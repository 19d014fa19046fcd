/**
 * Re-runs captures through the whole pipeline under a new run number. Every stage is idempotent
 * and the aggregate step replaces a capture's earlier faces and sightings, so nothing is doubled.
 * A selection is walked a page at a time in a stable order (the `reprocess` job, workers/operations.ts),
 * so a year of captures never sits in memory and a retried job resumes after its last page.
 */
import type { Knex } from 'knex';
import type { JobPayload, ReprocessSelection } from '../queue/contract.js';
import type { Queues } from '../queue/queues.js';
import type { CaptureLifecycle } from '../storage/capture-lifecycle.js';
import { restartCapture } from './restart-capture.js';

/** Where the walk stopped: the last capture restarted (and its capture time, the range's sort key). */
export type ReprocessCursor = NonNullable<JobPayload<'reprocess'>['after']>;

type CaptureRow = { id: string; run: number; captured_at: Date; image_deleted_at: Date | null };

function selected(db: Knex, merchantId: string, selection: ReprocessSelection): Knex.QueryBuilder {
  const query = db('captures as c').where('c.merchant_id', merchantId);
  if ('batchId' in selection) return query.join('batch_captures as bc', 'bc.capture_id', 'c.id').where('bc.batch_id', selection.batchId);
  return query.where('c.store_id', selection.storeId).where('c.captured_at', '>=', new Date(selection.from)).where('c.captured_at', '<', new Date(selection.to));
}

export async function countSelection(db: Knex, merchantId: string, selection: ReprocessSelection): Promise<number> {
  const [{ n }] = await selected(db, merchantId, selection).count({ n: '*' });
  return Number(n);
}

/**
 * Restarts the page of up to `limit` captures after `after`: a batch in capture-id order (its
 * primary key), a range in (captured_at, id) order (the store index). `next` is undefined when the
 * page was the last one.
 */
export async function reprocessPage(
  deps: { db: Knex; queues: Queues; lifecycle: CaptureLifecycle },
  merchantId: string,
  selection: ReprocessSelection,
  after: ReprocessCursor | undefined,
  limit: number,
): Promise<{ seen: number; queued: number; imageGone: number; next?: ReprocessCursor }> {
  const query = selected(deps.db, merchantId, selection).select('c.id', 'c.run', 'c.captured_at', 'c.image_deleted_at').limit(limit);
  if ('batchId' in selection) {
    if (after) query.where('c.id', '>', after.id);
    query.orderBy('c.id');
  } else {
    if (after) query.whereRaw('(c.captured_at, c.id) > (?, ?)', [new Date(after.capturedAt), after.id]);
    query.orderBy(['c.captured_at', 'c.id']);
  }
  const rows: CaptureRow[] = await query;
  let queued = 0;
  let imageGone = 0;
  for (const capture of rows) {
    if (capture.image_deleted_at !== null) imageGone += 1;
    else if (await restartCapture(deps, capture, { onlyIfOpen: false })) queued += 1;
  }
  const last = rows.at(-1);
  return {
    seen: rows.length,
    queued,
    imageGone,
    next: rows.length === limit && last ? { id: last.id, capturedAt: last.captured_at.toISOString() } : undefined,
  };
}
