import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedTenant, startTestApi, type TestApi } from './support.js';

let t: TestApi;
let a: Awaited<ReturnType<typeof seedTenant>>;
let b: Awaited<ReturnType<typeof seedTenant>>;
let secondStore: string;

beforeAll(async () => {
  t = await startTestApi();
  a = await seedTenant(t, 'Acme');
  b = await seedTenant(t, 'Rival');
  const store = await t.call('POST', '/v1/stores', { key: a.merchantKey, json: { name: 'Acme Harbour', timezone: 'Europe/Paris' } });
  secondStore = store.body.id;
});

afterAll(async () => {
  await t?.close();
});

/** A visitor of merchant A with one visit per entry of `visits` ([store, start]), as the pipeline leaves it. */
async function visitor(visits: [string, string][], merchantId = a.merchantId): Promise<string> {
  const id = randomUUID();
  const starts = visits.map(([, start]) => Date.parse(start));
  await t.env.db('visitors').insert({ id, merchant_id: merchantId, first_seen_at: new Date(Math.min(...starts)), last_seen_at: new Date(Math.max(...starts) + 60_000) });
  for (const [storeId, start] of visits) {
    await t.env.db('visits').insert({
      store_id: storeId,
      merchant_id: merchantId,
      subject_kind: 'visitor',
      subject_id: id,
      started_at: new Date(start),
      ended_at: new Date(Date.parse(start) + 60_000),
      sightings: 2,
    });
  }
  return id;
}

async function everyPage(path: string, limit: number): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const r = await t.call('GET', `${path}${path.includes('?') ? '&' : '?'}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, { key: a.merchantKey });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    items.push(...r.body.items);
    cursor = r.body.nextCursor;
  } while (cursor);
  return items;
}

describe('visitors', () => {
  let regular: string;
  let recent: string;
  let harbourOnly: string;

  beforeAll(async () => {
    regular = await visitor([
      [a.storeId, '2026-11-20T10:00:00Z'],
      [a.storeId, '2026-11-21T10:00:00Z'],
      [secondStore, '2026-11-22T10:00:00Z'],
    ]);
    recent = await visitor([[a.storeId, '2026-11-30T10:00:00Z']]);
    harbourOnly = await visitor([
      [secondStore, '2026-11-25T10:00:00Z'],
      [secondStore, '2026-11-26T10:00:00Z'],
    ]);
    await visitor([[b.storeId, '2026-12-01T10:00:00Z']], b.merchantId);
  });

  it('lists the merchant\'s visitors by last seen or by visits, page by page, with the stores they visited', async () => {
    const byLastSeen = await everyPage('/v1/visitors', 2);
    expect(byLastSeen.map((v) => v.id)).toEqual([recent, harbourOnly, regular]);
    expect(byLastSeen[2]).toEqual({
      id: regular,
      visits: 3,
      firstSeenAt: '2026-11-20T10:00:00.000Z',
      lastSeenAt: '2026-11-22T10:01:00.000Z',
      storeIds: [a.storeId, secondStore].sort(),
    });
    const byVisits = await everyPage('/v1/visitors?sort=visits', 1);
    expect(byVisits.map((v) => [v.id, v.visits])).toEqual([[regular, 3], [harbourOnly, 2], [recent, 1]]);
  });

  it('filters by store, counting the visits there', async () => {
    const atHarbour = await everyPage(`/v1/visitors?storeId=${secondStore}&sort=visits`, 50);
    expect(atHarbour.map((v) => [v.id, v.visits])).toEqual([[harbourOnly, 2], [regular, 1]]);
    expect((await t.call('GET', `/v1/visitors?storeId=${b.storeId}`, { key: a.merchantKey })).status).toBe(404);
  });

  it('reads one visitor with its visit history, latest first, paged', async () => {
    const first = await t.call('GET', `/v1/visitors/${regular}?limit=2`, { key: a.merchantKey });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ id: regular, merchantId: a.merchantId, visits: 3, storeIds: [a.storeId, secondStore].sort() });
    expect(first.body.history.items.map((v: { startedAt: string }) => v.startedAt)).toEqual(['2026-11-22T10:00:00.000Z', '2026-11-21T10:00:00.000Z']);
    const rest = await t.call('GET', `/v1/visitors/${regular}?limit=2&cursor=${first.body.history.nextCursor}`, { key: a.merchantKey });
    expect(rest.body.history).toEqual({
      items: [{ storeId: a.storeId, startedAt: '2026-11-20T10:00:00.000Z', endedAt: '2026-11-20T10:01:00.000Z', sightings: 2 }],
      nextCursor: null,
    });
  });

  it('answers 404 to another merchant, 403 to a device, and needs merchantId from an admin', async () => {
    expect((await t.call('GET', `/v1/visitors/${regular}`, { key: b.merchantKey })).status).toBe(404);
    expect((await t.call('GET', `/v1/visitors/${randomUUID()}`, { key: a.merchantKey })).status).toBe(404);
    expect((await t.call('GET', `/v1/visitors?merchantId=${a.merchantId}`, { key: b.merchantKey })).status).toBe(404);
    expect((await t.call('GET', '/v1/visitors', { key: b.merchantKey })).body.items).toHaveLength(1);
    expect((await t.call('GET', '/v1/visitors', { key: a.deviceKey })).status).toBe(403);
    expect((await t.call('GET', `/v1/visitors/${regular}`, { key: a.deviceKey })).status).toBe(403);
    expect((await t.call('GET', '/v1/visitors', { key: t.adminKey })).status).toBe(400);
    expect((await t.call('GET', `/v1/visitors?merchantId=${a.merchantId}`, { key: t.adminKey })).body.items).toHaveLength(3);
    expect((await t.call('GET', `/v1/visitors/${regular}`, { key: t.adminKey })).status).toBe(200);
  });
});
