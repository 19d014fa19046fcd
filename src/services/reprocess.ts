/**
 * Re-runs captures through the whole pipeline under a new run number. Every stage is idempotent
 * and the aggregate step replaces a capture's earlier faces and sightings, so nothing is doubled.
 */
import type { Knex } from 'knex';
import type { Queues } from '../queue/queues.js';
import { CaptureLifecycle } from '../storage/capture-lifecycle.js';
import { restartCapture } from './restart-capture.js';

export type ReprocessSelection = { merchantId?: string } & ({ batchId: string } | { storeId: string; from: Date; to: Date });

export type ReprocessOutcome = { queued: number; imageGone: number };

export async function reprocessCaptures(deps: { db: Knex; queues: Queues }, selection: ReprocessSelection): Promise<ReprocessOutcome> {
  const { db, queues } = deps;
  const query = db('captures').select('id', 'run', 'image_deleted_at');
  if (selection.merchantId) query.where('merchant_id', selection.merchantId);
  if ('batchId' in selection) {
    query.whereIn('id', db('batch_captures').where('batch_id', selection.batchId).select('capture_id'));
  } else {
    query.where('store_id', selection.storeId).where('captured_at', '>=', selection.from).where('captured_at', '<', selection.to);
  }
  const captures: { id: string; run: number; image_deleted_at: Date | null }[] = await query;

  const withImage = captures.filter((capture) => capture.image_deleted_at === null);
  let queued = 0;
  const lifecycle = new CaptureLifecycle(db);
  for (const capture of withImage) if (await restartCapture({ lifecycle, queues }, capture, { onlyIfOpen: false })) queued += 1;
  return { queued, imageGone: captures.length - withImage.length };
}
