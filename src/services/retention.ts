/**
 * Retention: capture images are deleted once processed (unless KEEP_IMAGES; failed captures' after
 * FAILED_IMAGE_RETENTION_DAYS), and anonymous visitors not seen for VISITOR_RETENTION_DAYS are
 * purged with their vectors. Aggregate counts (sightings, visits, rollups) stay: they keep the
 * visitor's id as an anonymous subject key.
 */
import type { Knex } from 'knex';
import type { Gallery } from '../gallery/gallery.js';
import type { AsideBlob, BlobStore } from '../storage/blobs.js';
import { FINAL_STATES, OPEN_STATES } from '../storage/capture-lifecycle.js';
import { forgetSubjectEmbeddings } from '../storage/repositories/rejections.js';
import { deleteVisitorCrops } from './face-crops.js';

type Deps = { db: Knex; blobs: BlobStore; gallery: Gallery };

/** Files set aside before one re-check: bounds how long an upload of the same bytes may find its file away. */
const SET_ASIDE_AT_ONCE = 50;

/**
 * Deletes the stored images no capture needs any more: those of done captures, and of captures
 * failed longer ago than `keepFailedDays` (kept until then so `faceperks reprocess` can recover
 * them). Uploads are content-addressed, so one file may back captures of several devices: it goes
 * only when none of them is open or recently failed. An upload of the same bytes may be recorded
 * meanwhile (it commits its file after inserting its capture): files are set aside a few dozen at
 * a time, and those such a capture needs by then are put back; the others' check, drop and mark
 * are one statement or request for all of them.
 */
export async function purgeProcessedImages({ db, blobs }: Pick<Deps, 'db' | 'blobs'>, keepFailedDays: number, pageSize = 500): Promise<number> {
  const failedCutoff = new Date(Date.now() - keepFailedDays * 24 * 3600_000);
  const stillNeeded = (query: Knex.QueryBuilder) =>
    query.whereIn('status', OPEN_STATES).orWhere((failed) => failed.where('status', 'failed').where('updated_at', '>=', failedCutoff));

  /** Deletes the files of `keys` that no capture needs once they are set aside; returns how many went. */
  const purge = async (keys: string[]): Promise<number> => {
    const asides: AsideBlob[] = [];
    let neededAgain: Set<string>;
    try {
      for (const key of keys) {
        const aside = await blobs.setAside(key);
        if (aside) asides.push(aside);
      }
      const rows: { blob_key: string }[] =
        asides.length === 0 ? [] : await db('captures').whereIn('blob_key', asides.map((aside) => aside.key)).where(stillNeeded).distinct('blob_key');
      neededAgain = new Set(rows.map((row) => row.blob_key));
      for (const aside of asides) if (neededAgain.has(aside.key)) await blobs.restore(aside);
    } catch (error) {
      // Whatever failed (MySQL, the store), no file an upload may need stays aside.
      await Promise.allSettled(asides.map((aside) => blobs.restore(aside)));
      throw error;
    }
    await blobs.dropAsides(asides.filter((aside) => !neededAgain.has(aside.key)));
    const gone = keys.filter((key) => !neededAgain.has(key));
    if (gone.length > 0) await db('captures').whereIn('blob_key', gone).whereIn('status', FINAL_STATES).update({ image_deleted_at: db.fn.now(3) });
    return gone.length;
  };

  let deleted = 0;
  for (;;) {
    const unneeded: string[] = (
      await db('captures as c')
        .whereNull('c.image_deleted_at')
        .whereIn('c.status', FINAL_STATES)
        .whereNotExists(db('captures as o').whereRaw('o.blob_key = c.blob_key').where(stillNeeded).select(db.raw('1')))
        .distinct('c.blob_key')
        .limit(pageSize)
    ).map((row: { blob_key: string }) => row.blob_key);
    for (let i = 0; i < unneeded.length; i += SET_ASIDE_AT_ONCE) deleted += await purge(unneeded.slice(i, i + SET_ASIDE_AT_ONCE));
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
