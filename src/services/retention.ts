/**
 * Retention: capture images are deleted once processed (unless KEEP_IMAGES), and anonymous
 * visitors not seen for VISITOR_RETENTION_DAYS are purged with their vectors. Aggregate counts
 * (sightings, visits, rollups) stay: they keep the visitor's id as an anonymous subject key.
 */
import type { Knex } from 'knex';
import type { Gallery } from '../gallery/gallery.js';
import type { BlobStore } from '../storage/blobs.js';

type Deps = { db: Knex; blobs: BlobStore; gallery: Gallery };

/**
 * Deletes the stored images of finished captures. Uploads are content-addressed, so one file may
 * back captures of several devices: it is deleted only when none of them is still in flight. An
 * upload of the same bytes may be recorded meanwhile (it commits its file after inserting its
 * capture): the file is set aside first and put back if such a capture appeared.
 */
export async function purgeProcessedImages({ db, blobs }: Pick<Deps, 'db' | 'blobs'>, limit = 500): Promise<number> {
  const finished: { blob_key: string }[] = await db('captures')
    .whereIn('status', ['done', 'failed'])
    .whereNull('image_deleted_at')
    .distinct('blob_key')
    .limit(limit);
  let deleted = 0;
  const inFlight = async (key: string) =>
    (await db('captures').where({ blob_key: key }).whereIn('status', ['queued', 'processing']).first('id')) !== undefined;
  for (const { blob_key: key } of finished) {
    if (await inFlight(key)) continue;
    const aside = await blobs.setAside(key);
    if (aside && (await inFlight(key))) {
      await blobs.restore(aside);
      continue;
    }
    if (aside) await blobs.discard(aside);
    await db('captures').where({ blob_key: key }).whereIn('status', ['done', 'failed']).update({ image_deleted_at: db.fn.now(3) });
    deleted += 1;
  }
  return deleted;
}

/** Purges visitors last seen before the cutoff: vectors first (a failure leaves the row to retry), then the row. */
export async function purgeStaleVisitors({ db, gallery }: Pick<Deps, 'db' | 'gallery'>, retentionDays: number, limit = 500): Promise<number> {
  const cutoff = new Date(Date.now() - retentionDays * 24 * 3600_000);
  const stale: { id: string; merchant_id: string }[] = await db('visitors').where('last_seen_at', '<', cutoff).limit(limit).select('id', 'merchant_id');
  for (const visitor of stale) {
    await gallery.deleteSubject('visitor', visitor.merchant_id, visitor.id);
    await db('visitors').where({ id: visitor.id }).delete();
  }
  return stale.length;
}
