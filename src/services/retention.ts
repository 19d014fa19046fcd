/**
 * Retention: capture images are deleted once processed (unless KEEP_IMAGES; failed captures' after
 * FAILED_IMAGE_RETENTION_DAYS), and anonymous visitors not seen for VISITOR_RETENTION_DAYS are
 * purged with their vectors. Aggregate counts (sightings, visits, rollups) stay: they keep the
 * visitor's id as an anonymous subject key.
 */
import type { Knex } from 'knex';
import type { Gallery } from '../gallery/gallery.js';
import type { BlobStore } from '../storage/blobs.js';
import { FINAL_STATES, OPEN_STATES } from '../storage/capture-lifecycle.js';
import { forgetSubjectEmbeddings } from '../storage/repositories/rejections.js';
import { deleteVisitorCrops } from './face-crops.js';

type Deps = { db: Knex; blobs: BlobStore; gallery: Gallery };

/** Keys deleted in one transaction: bounds how long an upload of the same bytes may wait for it. */
const DELETE_AT_ONCE = 50;

/**
 * Deletes the stored images no capture needs any more: those of done captures, and of captures
 * failed longer ago than `keepFailedDays` (kept until then so `faceperks reprocess` can recover
 * them). Uploads are content-addressed, so one file may back captures of several devices: it goes
 * only when none of them is open or recently failed.
 *
 * An upload of the same bytes may be recorded meanwhile; it commits its file after inserting its
 * capture. So each page of keys is checked and deleted in one REPEATABLE READ transaction whose
 * locking read takes InnoDB's next-key locks on the captures' blob_key index for those keys: a
 * capture with one of them cannot be inserted until the transaction ends. Either the upload's row
 * came first, and the file is kept, or it waits, and its upload stores the file again after the
 * deletion. A failed deletion rolls back and marks nothing; the next run tries again.
 */
export async function purgeProcessedImages({ db, blobs }: Pick<Deps, 'db' | 'blobs'>, keepFailedDays: number, pageSize = 500): Promise<number> {
  const failedCutoff = new Date(Date.now() - keepFailedDays * 24 * 3600_000);
  // A capture still needs its image while open, or failed within keepFailedDays.
  const stillNeeded = `(status IN (${OPEN_STATES.map(() => '?').join(', ')}) OR (status = 'failed' AND updated_at >= ?))`;
  const stillNeededBindings = [...OPEN_STATES, failedCutoff];

  /** Deletes the files of `keys` that no capture needs; returns how many went. */
  const purge = (keys: string[]): Promise<number> =>
    db.transaction(
      async (trx) => {
        const rows: { blob_key: string; needed: number }[] = await trx('captures')
          .whereIn('blob_key', keys)
          .forUpdate()
          .select('blob_key', trx.raw(`${stillNeeded} AS needed`, stillNeededBindings));
        const needed = new Set(rows.filter((row) => Number(row.needed) === 1).map((row) => row.blob_key));
        const gone = keys.filter((key) => !needed.has(key));
        await blobs.deleteMany(gone);
        if (gone.length > 0) await trx('captures').whereIn('blob_key', gone).update({ image_deleted_at: trx.fn.now(3) });
        return gone.length;
      },
      { isolationLevel: 'repeatable read' },
    );

  let deleted = 0;
  for (;;) {
    const unneeded: string[] = (
      await db('captures as c')
        .whereNull('c.image_deleted_at')
        .whereIn('c.status', FINAL_STATES)
        .whereNotExists(db('captures as o').whereRaw('o.blob_key = c.blob_key').whereRaw(stillNeeded, stillNeededBindings).select(db.raw('1')))
        .distinct('c.blob_key')
        .limit(pageSize)
    ).map((row: { blob_key: string }) => row.blob_key);
    for (let i = 0; i < unneeded.length; i += DELETE_AT_ONCE) deleted += await purge(unneeded.slice(i, i + DELETE_AT_ONCE));
    if (unneeded.length < pageSize) return deleted;
  }
}

/**
 * Purges visitors last seen before the cutoff: vectors and face crops first (a failure leaves the
 * row to retry), then the row.
 */
export async function purgeStaleVisitors({ db, blobs, gallery }: Deps, retentionDays: number, limit = 500): Promise<number> {
  const cutoff = new Date(Date.now() - retentionDays * 24 * 3600_000);
  const stale: { id: string; merchant_id: string }[] = await db('visitors').where('last_seen_at', '<', cutoff).limit(limit).select('id', 'merchant_id');
  for (const visitor of stale) {
    await gallery.deleteSubject('visitor', visitor.merchant_id, visitor.id);
    await forgetSubjectEmbeddings(db, { kind: 'visitor', id: visitor.id });
    await deleteVisitorCrops({ db, blobs }, { id: visitor.id, merchantId: visitor.merchant_id });
    await db('visitors').where({ id: visitor.id }).delete();
  }
  return stale.length;
}
