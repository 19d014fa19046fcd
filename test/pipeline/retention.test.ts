import { randomUUID } from 'node:crypto';
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
  it('deletes a processed image only once no capture sharing its bytes is still in flight', async () => {
    const [a, b] = [await seedTenant(t, 'A'), await seedTenant(t, 'B')];
    const image = await makeImage('jpeg', 96);
    const first = await upload(t, a.deviceKey, [{ name: 'images', file: image }]);
    const second = await upload(t, b.deviceKey, [{ name: 'images', file: image }]);
    const [idA, idB] = [first.body.captures[0].id, second.body.captures[0].id];
    const { blob_key: key } = await t.env.db('captures').where({ id: idA }).first('blob_key');
    expect((await t.env.db('captures').where({ id: idB }).first('blob_key')).blob_key).toBe(key);

    await t.env.db('captures').where({ id: idA }).update({ status: 'done' });
    expect(await purgeProcessedImages({ db: t.env.db, blobs: t.blobs })).toBe(0);
    expect(await t.blobs.exists(key)).toBe(true);

    await t.env.db('captures').where({ id: idB }).update({ status: 'failed' });
    expect(await purgeProcessedImages({ db: t.env.db, blobs: t.blobs })).toBe(1);
    expect(await t.blobs.exists(key)).toBe(false);
    const rows = await t.env.db('captures').whereIn('id', [idA, idB]).select('image_deleted_at');
    for (const row of rows) expect(row.image_deleted_at).toBeInstanceOf(Date);
    expect(await purgeProcessedImages({ db: t.env.db, blobs: t.blobs })).toBe(0);
  });

  it('keeps the image when the same bytes are uploaded again while it is being deleted', async () => {
    const [a, b] = [await seedTenant(t, 'A'), await seedTenant(t, 'B')];
    const image = await makeImage('jpeg', 97);
    const first = await upload(t, a.deviceKey, [{ name: 'images', file: image }]);
    const idA = first.body.captures[0].id;
    const { blob_key: key } = await t.env.db('captures').where({ id: idA }).first('blob_key');
    await t.env.db('captures').where({ id: idA }).update({ status: 'done' });

    // The upload lands between the purge's check and its deletion.
    let second: Awaited<ReturnType<typeof upload>> | undefined;
    const racing = Object.create(t.blobs) as typeof t.blobs;
    racing.setAside = async (k: string) => {
      const aside = await t.blobs.setAside(k);
      second = await upload(t, b.deviceKey, [{ name: 'images', file: image }]);
      return aside;
    };
    expect(await purgeProcessedImages({ db: t.env.db, blobs: racing })).toBe(0);
    expect(second!.status).toBe(202);
    expect(await t.blobs.exists(key)).toBe(true);
    expect(await t.blobs.get(key)).toEqual(image);
  });

  it('an upload recorded after its bytes were deleted stores them again', async () => {
    const [a, b] = [await seedTenant(t, 'A'), await seedTenant(t, 'B')];
    const image = await makeImage('png', 98);
    const first = await upload(t, a.deviceKey, [{ name: 'images', file: image }]);
    const idA = first.body.captures[0].id;
    const { blob_key: key } = await t.env.db('captures').where({ id: idA }).first('blob_key');
    await t.env.db('captures').where({ id: idA }).update({ status: 'done' });
    expect(await purgeProcessedImages({ db: t.env.db, blobs: t.blobs })).toBe(1);
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

    expect(await purgeStaleVisitors({ db: t.env.db, gallery }, 30)).toBe(1);

    expect(await t.env.db('visitors').where({ merchant_id: tenant.merchantId }).pluck('id')).toEqual([fresh.id]);
    expect(await gallery.countSubjectVectors('visitor', tenant.merchantId, stale.id)).toBe(0);
    expect(await gallery.countSubjectVectors('visitor', tenant.merchantId, fresh.id)).toBe(1);
  });
});
