import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChromaGallery } from '../../src/gallery/chroma-gallery.js';
import { purgeProcessedImages, purgeStaleVisitors } from '../../src/services/retention.js';
import { makeImage, seedTenant, startTestApi, upload, type TestApi } from '../api/support.js';

let t: TestApi;
const gallery = new ChromaGallery(process.env.CHROMA_URL!, 'default');

beforeAll(async () => {
  t = await startTestApi();
});
afterAll(async () => {
  await t?.close();
});

describe('retention', () => {
  it('keeps the image of a failed capture for keepFailedDays, then deletes it', async () => {
    const tenant = await seedTenant(t, 'Failed Co');
    const r = await upload(t, tenant.deviceKey, [{ name: 'images', file: await makeImage('jpeg', 97) }]);
    const id = r.body.captures[0].id;
    const { blob_key: key } = await t.env.db('captures').where({ id }).first('blob_key');
    await t.env.db('captures').where({ id }).update({ status: 'failed', updated_at: new Date(Date.now() - 6 * 24 * 3600_000) });
    expect(await purgeProcessedImages({ db: t.env.db, blobs: t.blobs }, 7)).toBe(0);
    expect(await t.blobs.exists(key)).toBe(true);

    await t.env.db('captures').where({ id }).update({ updated_at: new Date(Date.now() - 8 * 24 * 3600_000) });
    expect(await purgeProcessedImages({ db: t.env.db, blobs: t.blobs }, 7)).toBe(1);
    expect(await t.blobs.exists(key)).toBe(false);
  });

  it('deletes a processed image only once no capture sharing its bytes is still in flight', async () => {
    const [a, b] = [await seedTenant(t, 'A'), await seedTenant(t, 'B')];
    const image = await makeImage('jpeg', 96);
    const first = await upload(t, a.deviceKey, [{ name: 'images', file: image }]);
    const second = await upload(t, b.deviceKey, [{ name: 'images', file: image }]);
    const [idA, idB] = [first.body.captures[0].id, second.body.captures[0].id];
    const { blob_key: key } = await t.env.db('captures').where({ id: idA }).first('blob_key');
    expect((await t.env.db('captures').where({ id: idB }).first('blob_key')).blob_key).toBe(key);

    await t.env.db('captures').where({ id: idA }).update({ status: 'done' });
    expect(await purgeProcessedImages({ db: t.env.db, blobs: t.blobs }, 0)).toBe(0);
    expect(await t.blobs.exists(key)).toBe(true);

    await t.env.db('captures').where({ id: idB }).update({ status: 'failed' });
    expect(await purgeProcessedImages({ db: t.env.db, blobs: t.blobs }, 0)).toBe(1);
    expect(await t.blobs.exists(key)).toBe(false);
    const rows = await t.env.db('captures').whereIn('id', [idA, idB]).select('image_deleted_at');
    for (const row of rows) expect(row.image_deleted_at).toBeInstanceOf(Date);
    expect(await purgeProcessedImages({ db: t.env.db, blobs: t.blobs }, 0)).toBe(0);
  });

  const stagedFiles = async () => (await fs.readdir(path.join(t.env.config.blobsDir, 'tmp')).catch(() => [])).length;

  /** Tenant A's capture of a new image, done (its image now unneeded), and tenant B, to upload the same bytes. */
  const imageDoneInTenantA = async (format: 'jpeg' | 'png', size: number) => {
    const [a, b] = [await seedTenant(t, 'A'), await seedTenant(t, 'B')];
    const image = await makeImage(format, size);
    const first = await upload(t, a.deviceKey, [{ name: 'images', file: image }]);
    const id = first.body.captures[0].id;
    const { blob_key: key } = await t.env.db('captures').where({ id }).first('blob_key');
    await t.env.db('captures').where({ id }).update({ status: 'done' });
    return { b, image, key: key as string };
  };

  /** Waits until an insert into captures has been running a second (held by a lock); false if none within `ms`. */
  const captureInsertWaits = async (ms: number) => {
    for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 50))) {
      const [rows] = await t.env.db.raw("SELECT COUNT(*) AS waiting FROM information_schema.PROCESSLIST WHERE INFO LIKE 'insert into `captures`%' AND TIME >= 1");
      if (Number(rows[0].waiting) > 0) return true;
    }
    return false;
  };

  it('keeps the image when the same bytes are recorded while it is being deleted: the upload waits, then stores it again', async () => {
    const { b, image, key } = await imageDoneInTenantA('jpeg', 99);

    let second: ReturnType<typeof upload> | undefined;
    let waited = false;
    const racing = Object.create(t.blobs) as typeof t.blobs;
    racing.deleteMany = async (keys: string[]) => {
      // The upload comes after retention's check, before its deletion.
      second = upload(t, b.deviceKey, [{ name: 'images', file: image }]);
      waited = await captureInsertWaits(5000);
      await t.blobs.deleteMany(keys);
    };
    expect(await purgeProcessedImages({ db: t.env.db, blobs: racing }, 0)).toBe(1);

    expect(waited).toBe(true);
    expect((await second!).status).toBe(202);
    expect(await t.blobs.get(key)).toEqual(image);
    expect(await stagedFiles()).toBe(0);
    // The new capture needs the file: the next run keeps it.
    expect(await purgeProcessedImages({ db: t.env.db, blobs: t.blobs }, 0)).toBe(0);
    expect(await t.blobs.exists(key)).toBe(true);
  });

  it('marks nothing when the store fails in the middle of a batch, and deletes it all on the next run', async () => {
    await purgeProcessedImages({ db: t.env.db, blobs: t.blobs }, 0);
    const tenant = await seedTenant(t, 'Fault Co');
    const r = await upload(t, tenant.deviceKey, [{ name: 'images', file: await makeImage('jpeg', 93) }, { name: 'images', file: await makeImage('png', 93) }]);
    const ids = (r.body.captures as { id: string }[]).map((capture) => capture.id);
    await t.env.db('captures').whereIn('id', ids).update({ status: 'done' });
    const failing = Object.create(t.blobs) as typeof t.blobs;
    failing.deleteMany = async (keys: string[]) => {
      await t.blobs.delete(keys[0]);
      throw new Error('the store went away');
    };
    await expect(purgeProcessedImages({ db: t.env.db, blobs: failing }, 0)).rejects.toThrow('the store went away');
    const rows: { image_deleted_at: Date | null }[] = await t.env.db('captures').whereIn('id', ids).select('image_deleted_at');
    expect(rows.map((row) => row.image_deleted_at)).toEqual([null, null]);
    expect(await purgeProcessedImages({ db: t.env.db, blobs: t.blobs }, 0)).toBe(2);
    const keys: { blob_key: string; image_deleted_at: Date | null }[] = await t.env.db('captures').whereIn('id', ids).select('blob_key', 'image_deleted_at');
    for (const { blob_key: key, image_deleted_at: deletedAt } of keys) {
      expect(deletedAt).toBeInstanceOf(Date);
      expect(await t.blobs.exists(key)).toBe(false);
    }
  });

  it('does not store again a re-sent file whose capture is finished', async () => {
    const tenant = await seedTenant(t, 'A');
    const image = await makeImage('png', 95);
    const first = await upload(t, tenant.deviceKey, [{ name: 'images', file: image }]);
    const id = first.body.captures[0].id;
    const { blob_key: key } = await t.env.db('captures').where({ id }).first('blob_key');
    await t.env.db('captures').where({ id }).update({ status: 'done' });
    expect(await purgeProcessedImages({ db: t.env.db, blobs: t.blobs }, 0)).toBe(1);

    const again = await upload(t, tenant.deviceKey, [{ name: 'images', file: image }]);
    expect(again.body.captures[0]).toMatchObject({ id, duplicate: true, status: 'done' });
    expect(await t.blobs.exists(key)).toBe(false);
    expect(await stagedFiles()).toBe(0);
  });

  it('sweeps staged files left behind by a crash, and only old ones', async () => {
    const tmp = path.join(t.env.config.blobsDir, 'tmp');
    await fs.mkdir(tmp, { recursive: true });
    const [old, fresh] = [path.join(tmp, 'left-by-a-crash'), path.join(tmp, 'in-progress')];
    await fs.writeFile(old, 'x');
    await fs.writeFile(fresh, 'y');
    const dayAgo = new Date(Date.now() - 25 * 3600_000);
    await fs.utimes(old, dayAgo, dayAgo);
    expect(await t.blobs.sweepStaged(24 * 3600_000)).toBe(1);
    expect(await fs.readdir(tmp)).toEqual(['in-progress']);
    await fs.rm(fresh);
  });

  it('an upload recorded after its bytes were deleted stores them again', async () => {
    const { b, image, key } = await imageDoneInTenantA('png', 98);
    expect(await purgeProcessedImages({ db: t.env.db, blobs: t.blobs }, 0)).toBe(1);
    expect(await t.blobs.exists(key)).toBe(false);

    const second = await upload(t, b.deviceKey, [{ name: 'images', file: image }]);
    expect(second.status).toBe(202);
    expect(await t.blobs.get(key)).toEqual(image);
  });

  it('purges visitors unseen for the retention period together with their vectors', async () => {
    const tenant = await seedTenant(t, 'Shop');
    const day = 24 * 3600_000;
    const stale = { id: randomUUID(), seen: new Date(Date.now() - 40 * day) };
    const fresh = { id: randomUUID(), seen: new Date(Date.now() - 5 * day) };
    for (const visitor of [stale, fresh]) {
      await t.env.db('visitors').insert({ id: visitor.id, merchant_id: tenant.merchantId, first_seen_at: visitor.seen, last_seen_at: visitor.seen });
      await gallery.upsert('visitor', tenant.merchantId, visitor.id, visitor.id, Float32Array.from([1, 0, 0, 0]));
    }

    expect(await purgeStaleVisitors({ db: t.env.db, blobs: t.blobs, gallery }, 30)).toBe(1);

    expect(await t.env.db('visitors').where({ merchant_id: tenant.merchantId }).pluck('id')).toEqual([fresh.id]);
    expect(await gallery.countSubjectVectors('visitor', tenant.merchantId, stale.id)).toBe(0);
    expect(await gallery.countSubjectVectors('visitor', tenant.merchantId, fresh.id)).toBe(1);
  });
});
