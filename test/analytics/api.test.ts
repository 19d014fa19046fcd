import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnvironment, type TestEnvironment } from '../support/services.js';
import { createAnalyticsApp } from '../../scripts/analytics-server.js';
import { rebuildAnalytics } from '../../src/services/analytics/rebuild.js';
import { createApiKey } from '../../src/storage/repositories/apiKeys.js';
import { recordCapture, seedPerson, seedTenant, seedVisitor, type CaptureFace, type Tenant } from './support.js';

let env: TestEnvironment;
let server: Server;
let base: string;
let a: Tenant;
let b: Tenant;
const keys: Record<string, string> = {};
let member: string;

const perks = { points: 5, cooldownMinutes: 10 };

beforeAll(async () => {
  env = await createTestEnvironment();
  a = await seedTenant(env.db, 'Alpha', ['America/New_York']);
  b = await seedTenant(env.db, 'Beta', ['Europe/Paris']);
  keys.admin = (await createApiKey(env.db, { role: 'admin' })).key;
  keys.a = (await createApiKey(env.db, { role: 'merchant', merchantId: a.merchantId })).key;
  keys.b = (await createApiKey(env.db, { role: 'merchant', merchantId: b.merchantId })).key;
  keys.device = (await createApiKey(env.db, { role: 'device', merchantId: a.merchantId, deviceId: a.deviceIds[0] })).key;
  member = await seedPerson(env.db, a.merchantId, 'Ada Member');
  const v1 = await seedVisitor(env.db, a.merchantId);
  const v2 = await seedVisitor(env.db, a.merchantId);
  const rec = (iso: string, faces: CaptureFace[]) => recordCapture(env.db, a, 0, new Date(iso), faces, { perks });
  await rec('2026-03-07T17:00:00Z', [{ kind: 'visitor', subjectId: v2, age: 40, gender: 'female' }]); // Sat 12:00 EST
  await rec('2026-03-08T13:00:00Z', [{ kind: 'visitor', subjectId: v1, age: 22, gender: 'male' }]); // Sun 09:00 EDT
  await rec('2026-03-08T13:10:00Z', [{ kind: 'member', subjectId: member, age: 70, gender: 'female' }, { kind: 'visitor', subjectId: v1, age: 24, gender: 'male' }]);
  await rec('2026-03-08T13:20:00Z', [{ kind: 'visitor', subjectId: v1, age: 23, gender: 'male' }]);
  await rec('2026-03-08T19:00:00Z', [{ kind: 'visitor', subjectId: v2, age: 41, gender: 'female' }]); // 15:00 EDT, returning
  // Beta's data must never show up for Alpha.
  const vb = await seedVisitor(env.db, b.merchantId);
  await recordCapture(env.db, b, 0, new Date('2026-03-08T13:00:00Z'), [{ kind: 'visitor', subjectId: vb }]);
  const app = createAnalyticsApp(env.db, env.config);
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await env?.cleanup();
});

const get = (path: string, who: string | null) =>
  fetch(base + path, { headers: who ? { Authorization: `Bearer ${keys[who]}` } : {} });

describe('analytics API', () => {
  it('traffic by local day across the spring-forward weekend', async () => {
    const res = await get(`/v1/stores/${a.storeIds[0]}/analytics/traffic?from=2026-03-07&to=2026-03-09&interval=day`, 'a');
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ storeId: a.storeIds[0], timezone: 'America/New_York', interval: 'day', from: '2026-03-07T00:00:00.000-05:00', to: '2026-03-09T04:00:00.000Z' });
    expect(body.buckets).toEqual([
      { start: '2026-03-07T00:00:00.000-05:00', visits: 1, uniqueSubjects: 1, memberVisits: 0, visitorVisits: 1, newVisitors: 1, returningVisitors: 0 },
      { start: '2026-03-08T00:00:00.000-05:00', visits: 3, uniqueSubjects: 3, memberVisits: 1, visitorVisits: 2, newVisitors: 1, returningVisitors: 1 },
    ]);
    expect(body.totals).toEqual({ visits: 4, uniqueSubjects: 3, memberVisits: 1, visitorVisits: 3, newVisitors: 2 });
  });

  it('hourly buckets: every hour present, 23 on the short day', async () => {
    const body = await (await get(`/v1/stores/${a.storeIds[0]}/analytics/traffic?from=2026-03-08&to=2026-03-09&interval=hour`, 'a')).json();
    expect(body.buckets).toHaveLength(23);
    expect(body.buckets[2].start).toBe('2026-03-08T03:00:00.000-04:00');
    const nine = body.buckets.find((x: { start: string }) => x.start === '2026-03-08T09:00:00.000-04:00');
    expect(nine).toEqual({ start: '2026-03-08T09:00:00.000-04:00', visits: 2, uniqueSubjects: 2, memberVisits: 1, visitorVisits: 1, newVisitors: 1, returningVisitors: 0 });
    expect(body.buckets.reduce((s: number, x: { visits: number }) => s + x.visits, 0)).toBe(3);
  });

  it('"to" is exclusive even inside a bucket: a cut bucket and the totals count only visits before it', async () => {
    const store = `/v1/stores/${a.storeIds[0]}/analytics`;
    // 09:05 EDT: v1's visit (09:00) is in, the member's (09:10) is not.
    let body = await (await get(`${store}/traffic?from=2026-03-08&to=2026-03-08T13:05:00Z&interval=hour`, 'a')).json();
    expect(body.buckets.at(-1)).toEqual({ start: '2026-03-08T09:00:00.000-04:00', visits: 1, uniqueSubjects: 1, memberVisits: 0, visitorVisits: 1, newVisitors: 1, returningVisitors: 0 });
    expect(body.totals).toEqual({ visits: 1, uniqueSubjects: 1, memberVisits: 0, visitorVisits: 1, newVisitors: 1 });
    // Noon EDT cuts the day: the morning's two visits, not v2's return at 15:00.
    body = await (await get(`${store}/traffic?from=2026-03-08&to=2026-03-08T16:00:00Z&interval=day`, 'a')).json();
    expect(body.buckets).toEqual([{ start: '2026-03-08T00:00:00.000-05:00', visits: 2, uniqueSubjects: 2, memberVisits: 1, visitorVisits: 1, newVisitors: 1, returningVisitors: 0 }]);
    expect(body.totals).toEqual({ visits: 2, uniqueSubjects: 2, memberVisits: 1, visitorVisits: 1, newVisitors: 1 });
    body = await (await get(`${store}/visitors?from=2026-03-08&to=2026-03-08T16:00:00Z&interval=day`, 'a')).json();
    expect(body.totals).toMatchObject({ uniqueVisitors: 1, newVisitors: 1, returningVisitors: 0 });
    body = await (await get(`${store}/demographics?from=2026-03-08&to=2026-03-08T16:00:00Z&interval=day`, 'a')).json();
    expect(body.totals).toMatchObject({ visits: 2, gender: { male: 1, female: 1, unknown: 0 } });
    const sum = await (await get(`/v1/merchants/${a.merchantId}/analytics/summary?from=2026-03-08T05:00:00Z&to=2026-03-08T16:00:00Z`, 'a')).json();
    expect(sum.stores[0]).toMatchObject({ visits: 2, uniqueSubjects: 2, memberVisits: 1, visitorVisits: 1, newVisitors: 1 });
    expect(sum.totals).toMatchObject({ visits: 2, uniqueSubjects: 2, memberVisits: 1, visitorVisits: 1, newVisitors: 1, membersSeen: 1 });
  });

  it('demographics, visitors and peak hours', async () => {
    const q = 'from=2026-03-07&to=2026-03-09&interval=day';
    const demo = await (await get(`/v1/stores/${a.storeIds[0]}/analytics/demographics?${q}`, 'a')).json();
    expect(demo.totals).toEqual({
      visits: 4,
      gender: { male: 1, female: 3, unknown: 0 },
      age: { '0-17': 0, '18-24': 1, '25-34': 0, '35-44': 2, '45-54': 0, '55-64': 0, '65+': 1, unknown: 0 },
      averageVisitMinutes: 5,
      medianVisitMinutes: 0,
    });
    const vis = await (await get(`/v1/stores/${a.storeIds[0]}/analytics/visitors?${q}`, 'a')).json();
    expect(vis.totals).toEqual({ uniqueVisitors: 2, newVisitors: 2, returningVisitors: 0, repeatVisitors: 1 });
    expect(vis.frequency).toEqual([
      { visits: '1', visitors: 1 }, { visits: '2', visitors: 1 }, { visits: '3-5', visitors: 0 }, { visits: '6-10', visitors: 0 }, { visits: '11+', visitors: 0 },
    ]);
    const sunday = await (await get(`/v1/stores/${a.storeIds[0]}/analytics/visitors?from=2026-03-08&to=2026-03-09&interval=day`, 'a')).json();
    expect(sunday.totals).toEqual({ uniqueVisitors: 2, newVisitors: 1, returningVisitors: 1, repeatVisitors: 0 });
    const peak = await (await get(`/v1/stores/${a.storeIds[0]}/analytics/peak-hours?${q}`, 'a')).json();
    expect(peak.matrix[6][9]).toBe(2); // Sunday 09:00
    expect(peak.matrix[6][15]).toBe(1);
    expect(peak.matrix[5][12]).toBe(1); // Saturday 12:00
    expect(peak.peak).toEqual({ weekday: 'Sun', hour: 9, visits: 2 });
  });

  it('summary and recognitions', async () => {
    const sum = await (await get(`/v1/merchants/${a.merchantId}/analytics/summary?from=2026-03-01T00:00:00Z&to=2026-03-31T00:00:00Z`, 'a')).json();
    expect(sum.totals).toEqual({ visits: 4, uniqueSubjects: 3, memberVisits: 1, visitorVisits: 3, newVisitors: 2, membersSeen: 1, pointsAwarded: 5 });
    expect(sum.stores).toHaveLength(1);
    const rec = await (await get(`/v1/stores/${a.storeIds[0]}/recognitions?since=2026-03-01T00:00:00Z`, 'a')).json();
    expect(rec.recognitions).toEqual([
      expect.objectContaining({ personId: member, displayName: 'Ada Member', seenAt: '2026-03-08T13:10:00.000Z', pointsAwarded: 5 }),
    ]);
  });

  it('CSV on every analytics route', async () => {
    const res = await get(`/v1/stores/${a.storeIds[0]}/analytics/traffic?from=2026-03-07&to=2026-03-09&interval=day&format=csv`, 'a');
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(await res.text()).toBe(
      'start,visits,uniqueSubjects,memberVisits,visitorVisits,newVisitors,returningVisitors\r\n'
      + '2026-03-07T00:00:00.000-05:00,1,1,0,1,1,0\r\n'
      + '2026-03-08T00:00:00.000-05:00,3,3,1,2,1,1\r\n',
    );
    for (const path of [
      `/v1/stores/${a.storeIds[0]}/analytics/demographics?format=csv`, `/v1/stores/${a.storeIds[0]}/analytics/visitors?format=csv`,
      `/v1/stores/${a.storeIds[0]}/analytics/peak-hours?format=csv`, `/v1/merchants/${a.merchantId}/analytics/summary?format=csv`,
      `/v1/stores/${a.storeIds[0]}/recognitions?format=csv&since=2026-03-01`,
    ]) {
      const r = await get(path, 'a');
      expect(r.status, path).toBe(200);
      expect(r.headers.get('content-type'), path).toMatch(/^text\/csv/);
      expect((await r.text()).split('\r\n')[0].length, path).toBeGreaterThan(3);
    }
  });

  it('hourly answers, byte for byte: an empty hour, a full one and one the range cuts, in JSON and CSV', async () => {
    // The bucket lists are written straight from the rollup rows (bucket-list.ts): these are the
    // exact texts JSON.stringify and the CSV writer gave for the bucket objects.
    const text = async (kind: string, range: string, format = 'json') =>
      (await get(`/v1/stores/${a.storeIds[0]}/analytics/${kind}?${range}&interval=hour&format=${format}`, 'a')).text();
    const morning = 'from=2026-03-08T12:00:00Z&to=2026-03-08T14:00:00Z'; // 08:00 EDT, no visits; 09:00, two
    const cut = 'from=2026-03-08T19:00:00Z&to=2026-03-08T19:30:00Z'; // 15:00 to 15:30 EDT: v2 back
    const head = (from: string, to: string) => `{"storeId":"${a.storeIds[0]}","timezone":"America/New_York","interval":"hour","from":"${from}","to":"${to}"`;
    const ages = (young: number, mid: number, old: number) => `"age":{"0-17":0,"18-24":${young},"25-34":0,"35-44":${mid},"45-54":0,"55-64":0,"65+":${old},"unknown":0}`;
    expect(await text('traffic', morning)).toBe(
      `${head('2026-03-08T08:00:00.000-04:00', '2026-03-08T14:00:00.000Z')},"buckets":[`
      + '{"start":"2026-03-08T08:00:00.000-04:00","visits":0,"uniqueSubjects":0,"memberVisits":0,"visitorVisits":0,"newVisitors":0,"returningVisitors":0},'
      + '{"start":"2026-03-08T09:00:00.000-04:00","visits":2,"uniqueSubjects":2,"memberVisits":1,"visitorVisits":1,"newVisitors":1,"returningVisitors":0}],'
      + '"totals":{"visits":2,"uniqueSubjects":2,"memberVisits":1,"visitorVisits":1,"newVisitors":1}}',
    );
    expect(await text('traffic', cut)).toBe(
      `${head('2026-03-08T15:00:00.000-04:00', '2026-03-08T19:30:00.000Z')},"buckets":[`
      + '{"start":"2026-03-08T15:00:00.000-04:00","visits":1,"uniqueSubjects":1,"memberVisits":0,"visitorVisits":1,"newVisitors":0,"returningVisitors":1}],'
      + '"totals":{"visits":1,"uniqueSubjects":1,"memberVisits":0,"visitorVisits":1,"newVisitors":0}}',
    );
    expect(await text('demographics', morning)).toBe(
      `${head('2026-03-08T08:00:00.000-04:00', '2026-03-08T14:00:00.000Z')},"buckets":[`
      + `{"start":"2026-03-08T08:00:00.000-04:00","visits":0,"gender":{"male":0,"female":0,"unknown":0},${ages(0, 0, 0)}},`
      + `{"start":"2026-03-08T09:00:00.000-04:00","visits":2,"gender":{"male":1,"female":1,"unknown":0},${ages(1, 0, 1)}}],`
      + `"totals":{"visits":2,"gender":{"male":1,"female":1,"unknown":0},${ages(1, 0, 1)},"averageVisitMinutes":10,"medianVisitMinutes":10}}`,
    );
    expect(await text('visitors', cut)).toBe(
      `${head('2026-03-08T15:00:00.000-04:00', '2026-03-08T19:30:00.000Z')},"buckets":[`
      + '{"start":"2026-03-08T15:00:00.000-04:00","visitorVisits":1,"newVisitors":0,"returningVisitors":1}],'
      + '"totals":{"uniqueVisitors":1,"newVisitors":0,"returningVisitors":1,"repeatVisitors":0},'
      + '"frequency":[{"visits":"1","visitors":1},{"visits":"2","visitors":0},{"visits":"3-5","visitors":0},{"visits":"6-10","visitors":0},{"visits":"11+","visitors":0}]}',
    );
    expect(await text('demographics', cut, 'csv')).toBe(
      'start,visits,gender.male,gender.female,gender.unknown,age.0-17,age.18-24,age.25-34,age.35-44,age.45-54,age.55-64,age.65+,age.unknown\r\n'
      + '2026-03-08T15:00:00.000-04:00,1,0,1,0,0,0,0,1,0,0,0,0\r\n',
    );
  });

  it('tenancy: another merchant gets 404 everywhere, a device 403, no key 401, admin all', async () => {
    const routes = [
      `/v1/stores/${a.storeIds[0]}/analytics/traffic`, `/v1/stores/${a.storeIds[0]}/analytics/demographics`,
      `/v1/stores/${a.storeIds[0]}/analytics/visitors`, `/v1/stores/${a.storeIds[0]}/analytics/peak-hours`,
      `/v1/stores/${a.storeIds[0]}/recognitions`, `/v1/merchants/${a.merchantId}/analytics/summary`,
    ];
    for (const path of routes) {
      for (const suffix of ['', '?format=csv']) {
        const other = await get(path + suffix, 'b');
        expect(other.status, path).toBe(404);
        expect((await other.json()).error.code).toBe('not_found');
      }
      expect((await get(path, 'device')).status, path).toBe(403);
      expect((await get(path, null)).status, path).toBe(401);
      expect((await get(path, 'admin')).status, path).toBe(200);
      expect((await get(path, 'a')).status, path).toBe(200);
    }
    // B's own numbers contain nothing of A's.
    const own = await (await get(`/v1/stores/${b.storeIds[0]}/analytics/traffic?from=2026-03-01&to=2026-03-31&interval=day`, 'b')).json();
    expect(own.totals.visits).toBe(1);
    const listB = await (await get('/v1/stores', 'b')).json();
    expect(listB.stores.map((s: { id: string }) => s.id)).toEqual(b.storeIds);
    expect((await get(`/v1/stores/00000000-0000-4000-8000-000000000000/analytics/traffic`, 'admin')).status).toBe(404);
  });

  it('validates the range and the interval', async () => {
    const s = `/v1/stores/${a.storeIds[0]}/analytics/traffic`;
    const cases = [
      '?interval=week', '?from=2026-03-09&to=2026-03-08', '?from=2026-03-08&to=2026-03-08', '?from=2025-01-01&to=2026-03-01',
      '?from=yesterday', '?from=2026-02-30', '?from=2026-02-30T00:00:00Z', '?to=2026-03-01T24:00:00Z', '?to=2026-03-01T10:00:00', '?format=xml',
    ];
    for (const c of cases) {
      const res = await get(s + c, 'a');
      expect(res.status, c).toBe(400);
      expect((await res.json()).error.code, c).toBe('validation_error');
    }
    expect((await get(`${s}?from=2025-03-01&to=2026-03-01&interval=hour`, 'a')).status).toBe(200); // 365 days
    expect((await get(`/v1/stores/not-a-uuid/analytics/traffic`, 'a')).status).toBe(400);
  });

  it('cached answers never outlive a change: a new capture is seen at once, a rebuild bumps the version', async () => {
    const path = `/v1/stores/${b.storeIds[0]}/analytics/traffic?from=2026-03-08&to=2026-03-09&interval=day`;
    const csvPath = `${path}&format=csv`;
    const sumPath = `/v1/merchants/${b.merchantId}/analytics/summary?from=2026-03-01T00:00:00Z&to=2026-03-31T00:00:00Z`;
    const first = await get(path, 'b');
    expect(first.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const body = await first.json();
    expect(body.totals.visits).toBe(1);
    const again = await get(path, 'b'); // from the cache: same answer, same headers
    expect(again.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(again.headers.get('cache-control')).toBe('private, no-store');
    expect(await again.json()).toEqual(body);
    const csv = await (await get(csvPath, 'b')).text();
    expect((await (await get(sumPath, 'b')).json()).totals.visits).toBe(1);

    const visitor = await seedVisitor(env.db, b.merchantId);
    await recordCapture(env.db, b, 0, new Date('2026-03-08T15:00:00Z'), [{ kind: 'visitor', subjectId: visitor }]);
    const after = await (await get(path, 'b')).json();
    expect(after.totals).toMatchObject({ visits: 2, uniqueSubjects: 2 });
    expect(await (await get(csvPath, 'b')).text()).not.toBe(csv);
    expect((await (await get(sumPath, 'b')).json()).totals).toMatchObject({ visits: 2, uniqueSubjects: 2 });
    // another merchant's cached answers are not shared
    expect((await get(path, 'a')).status).toBe(404);

    const version = async () => Number((await env.db('analytics_store_versions').where('store_id', b.storeIds[0]).first('version'))?.version);
    const before = await version();
    await rebuildAnalytics(env.db, { storeId: b.storeIds[0], from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-03-31T00:00:00Z'), visitGapMinutes: 30 });
    expect(await version()).toBeGreaterThan(before);
    expect(await (await get(path, 'b')).json()).toEqual(after);
  });
});
