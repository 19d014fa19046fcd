import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChromaGallery } from '../../src/gallery/chroma-gallery.js';
import { INTERACTIVE_QUEUE, type InteractiveResult } from '../../src/queue/contract.js';
import { redisConnection } from '../../src/queue/queues.js';
import { hashApiKey } from '../../src/storage/repositories/apiKeys.js';
import { makeImage, seedTenant, startTestApi, upload, type TestApi } from './support.js';

let t: TestApi;
let a: Awaited<ReturnType<typeof seedTenant>>;
let b: Awaited<ReturnType<typeof seedTenant>>;
let enrolWorker: Worker;

const face = { box: { x: 1, y: 2, width: 30, height: 40 }, score: 0.99, landmarks: [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]], age: 30, gender: 'female' };

beforeAll(async () => {
  t = await startTestApi({ deps: { gallery: new ChromaGallery(process.env.CHROMA_URL!, 'default') } });
  a = await seedTenant(t, 'Acme');
  b = await seedTenant(t, 'Rival');
  // Enrols as the interactive worker does, without the models: the row, answered as a success.
  enrolWorker = new Worker(
    INTERACTIVE_QUEUE,
    async (job) => {
      await t.env.db('person_faces').insert({ id: job.data.faceId, person_id: job.data.personId, blob_key: job.data.imageKey, pack: t.env.config.MODEL_PACK, face: JSON.stringify(face) });
      return { ok: true, faceId: job.data.faceId, face } as InteractiveResult['enrol'];
    },
    { connection: redisConnection(t.env.config), prefix: t.env.config.QUEUE_PREFIX },
  );
});

afterAll(async () => {
  await enrolWorker?.close();
  await t?.close();
});

const keyIdOf = async (key: string): Promise<string> => (await t.env.db('api_keys').where('key_hash', hashApiKey(key)).first('id')).id;

async function auditOf(key: string, query = ''): Promise<any[]> {
  const r = await t.call('GET', `/v1/audit${query}`, { key });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.items;
}

describe('GET /v1/audit', () => {
  let member: string;

  beforeAll(async () => {
    const created = await t.call('POST', '/v1/people', { key: a.merchantKey, json: { displayName: 'Ada', externalId: 'card-1' } });
    member = created.body.id;
    expect((await t.call('PATCH', `/v1/people/${member}`, { key: a.merchantKey, json: { displayName: 'Ada L.' } })).status).toBe(200);
    const enrolled = await upload(t, a.merchantKey, [{ name: 'image', file: await makeImage() }], `/v1/people/${member}/faces`);
    expect(enrolled.status, JSON.stringify(enrolled.body)).toBe(201);
    expect((await t.call('DELETE', `/v1/people/${member}/faces/${enrolled.body.faceId}`, { key: a.merchantKey })).status).toBe(204);
    await t.env.db('people').where('id', member).update({ points: 10 });
    const redeemed = await t.call('POST', `/v1/people/${member}/redemptions`, { key: t.adminKey, json: { points: 4, reason: 'tea', idempotencyKey: 'tea-1' } });
    expect(redeemed.status).toBe(201);
    await t.call('POST', `/v1/people/${member}/redemptions`, { key: t.adminKey, json: { points: 4, reason: 'tea', idempotencyKey: 'tea-1' } });
    expect((await t.call('DELETE', `/v1/people/${member}`, { key: a.merchantKey })).status).toBe(204);
    await t.call('POST', '/v1/people', { key: b.merchantKey, json: { displayName: 'Bo' } });
  });

  it('records who changed a member, when and what, newest first; the trail outlives the erased member', async () => {
    const entries = await auditOf(a.merchantKey);
    expect(entries.map((e) => e.action)).toEqual(['member.erased', 'points.redeemed', 'face.removed', 'face.enrolled', 'member.updated', 'member.created']);
    const merchantKeyId = await keyIdOf(a.merchantKey);
    const adminKeyId = await keyIdOf(t.adminKey);
    for (const entry of entries) {
      expect(entry).toMatchObject({ merchantId: a.merchantId, subject: { kind: 'member', id: member }, at: expect.any(String) });
      expect(entry.actor).toEqual(entry.action === 'points.redeemed' ? { keyId: adminKeyId, role: 'admin' } : { keyId: merchantKeyId, role: 'merchant' });
    }
    expect(entries.find((e) => e.action === 'member.updated').details).toEqual({ fields: ['displayName'] });
    expect(entries.find((e) => e.action === 'points.redeemed').details).toEqual({ redemptionId: expect.any(String), points: 4 });
    expect(entries.find((e) => e.action === 'face.removed').details).toEqual(entries.find((e) => e.action === 'face.enrolled').details);
    // Details name ids and fields, never the member's name or external id.
    expect(JSON.stringify(entries)).not.toMatch(/Ada|card-1/);
  });

  it('pages with cursor and limit', async () => {
    const first = await t.call('GET', '/v1/audit?limit=4', { key: a.merchantKey });
    const rest = await t.call('GET', `/v1/audit?limit=4&cursor=${first.body.nextCursor}`, { key: a.merchantKey });
    expect(first.body.items).toHaveLength(4);
    expect(rest.body).toMatchObject({ items: [expect.objectContaining({ action: 'member.updated' }), expect.objectContaining({ action: 'member.created' })], nextCursor: null });
  });

  it('shows a merchant only its own entries and an admin every merchant\'s', async () => {
    expect((await auditOf(b.merchantKey)).map((e) => [e.merchantId, e.action])).toEqual([[b.merchantId, 'member.created']]);
    expect((await t.call('GET', `/v1/audit?merchantId=${a.merchantId}`, { key: b.merchantKey })).status).toBe(404);
    expect((await t.call('GET', '/v1/audit', { key: a.deviceKey })).status).toBe(403);
    expect(await auditOf(t.adminKey)).toHaveLength(7);
    expect(await auditOf(t.adminKey, `?merchantId=${b.merchantId}`)).toHaveLength(1);
  });
});
