import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChromaGallery } from '../../src/gallery/chroma-gallery.js';
import { seedTenant, startTestApi, type TestApi } from './support.js';

let t: TestApi;
let gallery: ChromaGallery;
let a: Awaited<ReturnType<typeof seedTenant>>;
let b: Awaited<ReturnType<typeof seedTenant>>;

beforeAll(async () => {
  gallery = new ChromaGallery(process.env.CHROMA_URL!, 'default');
  t = await startTestApi({ deps: { gallery } });
  a = await seedTenant(t, 'Acme');
  b = await seedTenant(t, 'Rival');
});

afterAll(async () => {
  await t?.close();
});

async function createMember(key: string, displayName: string, externalId?: string): Promise<string> {
  const r = await t.call('POST', '/v1/people', { key, json: { displayName, externalId } });
  expect(r.status).toBe(201);
  return r.body.id;
}

/** An enrolled face as the interactive worker leaves it: a row, its image and its vector. */
async function enrolFace(personId: string, merchantId: string): Promise<string> {
  const faceId = randomUUID();
  const blobKey = `people/${personId}/${faceId}.jpg`;
  await t.blobs.put(blobKey, 'jpeg bytes');
  await t.env.db('person_faces').insert({ id: faceId, person_id: personId, blob_key: blobKey, pack: 'default', face: '{}' });
  await gallery.upsert('member', merchantId, personId, faceId, Float32Array.from([1, 0, 0, 0]));
  return faceId;
}

/** Every item of a list, following nextCursor page by page. */
async function everyPage(path: string, key: string, limit: number): Promise<{ items: any[]; pages: number }> {
  const items: any[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const separator = path.includes('?') ? '&' : '?';
    const r = await t.call('GET', `${path}${separator}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, { key });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    items.push(...r.body.items);
    cursor = r.body.nextCursor;
    pages++;
  } while (cursor);
  return { items, pages };
}

describe('GET /v1/people', () => {
  it('lists the merchant\'s members by last seen (never seen last) or points, page by page, searchable by name and externalId', async () => {
    const { merchantKey } = await seedTenant(t, 'Lister');
    const ids: Record<string, string> = {};
    const seen: Record<string, [string | null, number]> = {
      Ada: ['2026-11-27T10:00:00Z', 5],
      Bob: ['2026-11-28T10:00:00Z', 30],
      Cy: [null, 10],
      Dee: ['2026-11-28T10:00:00Z', 10],
      Eve: [null, 0],
    };
    for (const [name, [lastSeen, points]] of Object.entries(seen)) {
      ids[name] = await createMember(merchantKey, name, `card-${name}`);
      await t.env.db('people').where('id', ids[name]).update({ last_seen_at: lastSeen ? new Date(lastSeen) : null, points });
    }
    await createMember(a.merchantKey, 'Ada of another merchant');

    const byLastSeen = await everyPage('/v1/people', merchantKey, 2);
    expect(byLastSeen.pages).toBe(3);
    const names = (items: any[]) => items.map((p) => p.displayName);
    const inIdOrder = (...tied: string[]) => tied.sort((x, y) => (ids[x] < ids[y] ? 1 : -1));
    // Bob and Dee share a time, Cy and Eve were never seen: the id decides, and no page repeats or skips one.
    expect(names(byLastSeen.items)).toEqual([...inIdOrder('Bob', 'Dee'), 'Ada', ...inIdOrder('Cy', 'Eve')]);
    expect(byLastSeen.items[0]).toMatchObject({ merchantId: expect.any(String), externalId: expect.stringMatching(/^card-/), points: expect.any(Number), faces: [] });

    const byPoints = await everyPage('/v1/people?sort=points', merchantKey, 2);
    expect(names(byPoints.items)).toEqual(['Bob', ...inIdOrder('Cy', 'Dee'), 'Ada', 'Eve']);

    expect(names((await t.call('GET', '/v1/people?q=d', { key: merchantKey })).body.items).sort()).toEqual(['Ada', 'Dee']);
    expect(names((await t.call('GET', '/v1/people?q=%25', { key: merchantKey })).body.items)).toEqual([]);
    expect((await t.call('GET', '/v1/people?externalId=card-Cy', { key: merchantKey })).body).toEqual({ items: [expect.objectContaining({ id: ids.Cy })], nextCursor: null });
  });

  it('needs merchantId with an admin key, refuses another merchant\'s id and a forged cursor', async () => {
    expect((await t.call('GET', '/v1/people', { key: t.adminKey })).status).toBe(400);
    expect((await t.call('GET', `/v1/people?merchantId=${a.merchantId}`, { key: t.adminKey })).status).toBe(200);
    expect((await t.call('GET', `/v1/people?merchantId=${a.merchantId}`, { key: b.merchantKey })).status).toBe(404);
    expect((await t.call('GET', '/v1/people', { key: a.deviceKey })).status).toBe(403);
    const forged = await t.call('GET', '/v1/people?cursor=bm90LWpzb24', { key: a.merchantKey });
    expect(forged).toMatchObject({ status: 400, body: { error: { code: 'invalid_cursor' } } });
    expect((await t.call('GET', '/v1/people?limit=1000', { key: a.merchantKey })).status).toBe(400);
    // A cursor of one order is refused by the other (a time where a points value belongs).
    await createMember(a.merchantKey, 'Second');
    const byLastSeen = await t.call('GET', '/v1/people?limit=1', { key: a.merchantKey });
    const crossed = await t.call('GET', `/v1/people?sort=points&cursor=${byLastSeen.body.nextCursor}`, { key: a.merchantKey });
    expect(crossed).toMatchObject({ status: 400, body: { error: { code: 'invalid_cursor' } } });
  });
});

describe('PATCH /v1/people/:id', () => {
  it('renames a member and changes or clears its externalId; a taken externalId is a 409', async () => {
    const id = await createMember(a.merchantKey, 'Old name', 'patch-1');
    await createMember(a.merchantKey, 'Other', 'patch-2');

    const renamed = await t.call('PATCH', `/v1/people/${id}`, { key: a.merchantKey, json: { displayName: 'New name' } });
    expect(renamed).toMatchObject({ status: 200, body: { id, displayName: 'New name', externalId: 'patch-1' } });
    const taken = await t.call('PATCH', `/v1/people/${id}`, { key: a.merchantKey, json: { externalId: 'patch-2' } });
    expect(taken).toMatchObject({ status: 409, body: { error: { code: 'conflict' } } });
    const cleared = await t.call('PATCH', `/v1/people/${id}`, { key: a.merchantKey, json: { externalId: null } });
    expect(cleared.body).toMatchObject({ displayName: 'New name', externalId: null });
    expect((await t.call('PATCH', `/v1/people/${id}`, { key: a.merchantKey, json: {} })).status).toBe(400);
    expect((await t.call('PATCH', `/v1/people/${id}`, { key: a.merchantKey, json: { points: 1000 } })).status).toBe(400);

    expect((await t.call('PATCH', `/v1/people/${id}`, { key: b.merchantKey, json: { displayName: 'Hijack' } })).status).toBe(404);
    expect((await t.call('GET', `/v1/people/${id}`, { key: a.merchantKey })).body.displayName).toBe('New name');
  });
});

describe('DELETE /v1/people/:id/faces/:faceId', () => {
  it('removes the face, its gallery vector and its image, down to the last face', async () => {
    const id = await createMember(a.merchantKey, 'Two faces');
    const first = await enrolFace(id, a.merchantId);
    const second = await enrolFace(id, a.merchantId);
    expect(await gallery.countSubjectVectors('member', a.merchantId, id)).toBe(2);

    expect((await t.call('DELETE', `/v1/people/${id}/faces/${first}`, { key: b.merchantKey })).status).toBe(404);
    expect((await t.call('DELETE', `/v1/people/${id}/faces/${first}`, { key: a.merchantKey })).status).toBe(204);
    expect(await gallery.countSubjectVectors('member', a.merchantId, id)).toBe(1);
    expect(await t.blobs.exists(`people/${id}/${first}.jpg`)).toBe(false);
    expect((await t.call('GET', `/v1/people/${id}`, { key: a.merchantKey })).body.faces.map((f: { id: string }) => f.id)).toEqual([second]);

    expect((await t.call('DELETE', `/v1/people/${id}/faces/${first}`, { key: a.merchantKey })).status).toBe(404);
    expect((await t.call('DELETE', `/v1/people/${id}/faces/${second}`, { key: a.merchantKey })).status).toBe(204);
    expect(await gallery.countSubjectVectors('member', a.merchantId, id)).toBe(0);
    expect((await t.call('GET', `/v1/people/${id}`, { key: a.merchantKey })).body.faces).toEqual([]);
  });

  it('answers 404 for a face of another member of the same merchant', async () => {
    const owner = await createMember(a.merchantKey, 'Owner');
    const other = await createMember(a.merchantKey, 'Other');
    const face = await enrolFace(owner, a.merchantId);
    expect((await t.call('DELETE', `/v1/people/${other}/faces/${face}`, { key: a.merchantKey })).status).toBe(404);
    expect(await gallery.countSubjectVectors('member', a.merchantId, owner)).toBe(1);
  });
});

describe('GET /v1/people/:id/visits', () => {
  it('lists the member\'s visits, latest first, page by page; another merchant gets 404', async () => {
    const id = await createMember(a.merchantKey, 'Visitor of stores');
    const starts = ['2026-11-27T09:00:00Z', '2026-11-28T09:00:00Z', '2026-11-29T09:00:00Z'];
    for (const [i, start] of starts.entries()) {
      const startedAt = new Date(start);
      await t.env.db('visits').insert({
        store_id: a.storeId,
        merchant_id: a.merchantId,
        subject_kind: 'member',
        subject_id: id,
        started_at: startedAt,
        ended_at: new Date(startedAt.getTime() + 10 * 60_000),
        sightings: i + 1,
      });
    }
    const { items, pages } = await everyPage(`/v1/people/${id}/visits`, a.merchantKey, 2);
    expect(pages).toBe(2);
    expect(items).toEqual(
      [...starts].reverse().map((start, i) => ({
        storeId: a.storeId,
        startedAt: new Date(start).toISOString(),
        endedAt: new Date(new Date(start).getTime() + 10 * 60_000).toISOString(),
        sightings: starts.length - i,
      })),
    );
    expect((await t.call('GET', `/v1/people/${id}/visits`, { key: b.merchantKey })).status).toBe(404);
  });
});
