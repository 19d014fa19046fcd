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

type Deps = { db: Knex; blobs: BlobStore; gallery: Gallery };

/**
 * Deletes the stored images no capture needs any more: those of done captures, and of captures
 * failed longer ago than `keepFailedDays` (kept until then so `faceperks reprocess` can recover
 * them). Uploads are content-addressed, so one file may back captures of several devices: it goes
 * only when none of them is open or recently failed. An upload of the same bytes may be recorded
 * meanwhile (it commits its file after inserting its capture): the file is set aside first and put
 * back if such a capture appeared.
 */
export async function purgeProcessedImages({ db, blobs }: Pick<Deps, 'db' | 'blobs'>, keepFailedDays: number, pageSize = 500): Promise<number> {
  const failedCutoff = new Date(Date.now() - keepFailedDays * 24 * 3600_000);
  const stillNeeded = (query: Knex.QueryBuilder) =>
    query.whereIn('status', OPEN_STATES).orWhere((failed) => failed.where('status', 'failed').where('updated_at', '>=', failedCutoff));
  const needed = async (key: string) => (await db('captures').where({ blob_key: key }).where(stillNeeded).first('id')) !== undefined;
  let deleted = 0;
  for (;;) {
    const unneeded: { blob_key: string }[] = await db('captures as c')
      .whereNull('c.image_deleted_at')
      .whereIn('c.status', FINAL_STATES)
      .whereNotExists(db('captures as o').whereRaw('o.blob_key = c.blob_key').where(stillNeeded).select(db.raw('1')))
      .distinct('c.blob_key')
      .limit(pageSize);
    for (const { blob_key: key } of unneeded) {
      const aside = await blobs.setAside(key);
      if (aside && (await needed(key))) {
        await blobs.restore(aside);
        continue;
      }
      if (aside) await blobs.discard(aside);
      await db('captures').where({ blob_key: key }).whereIn('status', FINAL_STATES).update({ image_deleted_at: db.fn.now(3) });
      deleted += 1;
    }
    if (unneeded.length < pageSize) return deleted;
  }
}

/** Purges visitors last seen before the cutoff: vectors first (a failure leaves the row to retry), then the row. */
export async function purgeStaleVisitors({ db, gallery }: Pick<Deps, 'db' | 'gallery'>, retentionDays: number, limit = 500): Promise<number> {
  const cutoff = new Date(Date.now() - retentionDays * 24 * 3600_000);
  const stale: { id: string; merchant_id: string }[] = await db('visitors').where('last_seen_at', '<', cutoff).limit(limit).select('id', 'merchant_id');
  for (const visitor of stale) {
    await gallery.deleteSubject('visitor', visitor.merchant_id, visitor.id);
    await forgetSubjectEmbeddings(db, { kind: 'visitor', id: visitor.id });
    await db('visitors').where({ id: visitor.id }).delete();
  }
  return stale.length;
}
