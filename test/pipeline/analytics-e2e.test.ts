/**
 * Analytics end to end: captures with chosen capturedAt values go through the real pipeline
 * (detection, embedding, matching, aggregation), then every traffic number is checked.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Box } from '../../src/vision/types.js';
import { seedTenant, upload } from '../api/support.js';
import { cropAround, facesIn, fixture, startTestService, waitFor, type TestService } from './support.js';

let t: TestService;
let tenant: Awaited<ReturnType<typeof seedTenant>>;
let memberId: string;
let groupFaces: Box[];
let strangerFaces: number;

const reencode = (bytes: Buffer, width: number, quality: number) => sharp(bytes).resize({ width }).jpeg({ quality }).toBuffer();

async function send(capturedAt: string, image: Buffer) {
  const r = await upload(t, tenant.deviceKey, [{ name: 'capturedAt', value: capturedAt }, { name: 'images', file: image }]);
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  const id = r.body.captures[0].id as string;
  await waitFor(async () => (await t.call('GET', `/v1/captures/${id}`, { key: tenant.deviceKey })).body.status === 'done', 90_000, `capture ${id}`);
}

beforeAll(async () => {
  t = await startTestService();
  tenant = await seedTenant(t, 'Analytics Co'); // store in Europe/Paris (UTC+1 in November)
  const group = await fixture('sample1.jpg');
  const strangers = await fixture('sample2.jpg');
  groupFaces = await facesIn(group, t.env.config.modelsDir);
  strangerFaces = (await facesIn(strangers, t.env.config.modelsDir)).length;

  memberId = (await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Ada' } })).body.id;
  const portrait = await cropAround(group, groupFaces[0], 0.6, 400);
  const enrolled = await upload(t, tenant.merchantKey, [{ name: 'image', file: portrait }], `/v1/people/${memberId}/faces`);
  expect(enrolled.status).toBe(201);

  // Uploaded out of order, as a robot that was offline would: the 11:00 capture first.
  await send('2026-11-20T11:00:00Z', await reencode(group, 1500, 85)); // member + visitors again, 110 min later
  await send('2026-11-20T09:00:00Z', group); // member + two new visitors
  await send('2026-11-20T09:05:00Z', await reencode(group, 1700, 80)); // same people 5 min later: same visits
  await send('2026-11-20T09:20:00Z', strangers); // new visitors only
}, 300_000);

afterAll(async () => {
  await t?.close();
});

describe('analytics through the pipeline', () => {
  it('counts visits, subjects, members, new and returning visitors per local hour', async () => {
    const others = groupFaces.length - 1;
    const r = await t.call('GET', `/v1/stores/${tenant.storeId}/analytics/traffic?from=2026-11-20T08:00:00Z&to=2026-11-20T13:00:00Z&interval=hour`, {
      key: tenant.merchantKey,
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ storeId: tenant.storeId, timezone: 'Europe/Paris', interval: 'hour' });
    const zero = { visits: 0, uniqueSubjects: 0, memberVisits: 0, visitorVisits: 0, newVisitors: 0, returningVisitors: 0 };
    expect(r.body.buckets).toEqual([
      { start: '2026-11-20T09:00:00.000+01:00', ...zero },
      {
        start: '2026-11-20T10:00:00.000+01:00',
        visits: 1 + others + strangerFaces,
        uniqueSubjects: 1 + others + strangerFaces,
        memberVisits: 1,
        visitorVisits: others + strangerFaces,
        newVisitors: others + strangerFaces,
        returningVisitors: 0,
      },
      { start: '2026-11-20T11:00:00.000+01:00', ...zero },
      {
        start: '2026-11-20T12:00:00.000+01:00',
        visits: 1 + others,
        uniqueSubjects: 1 + others,
        memberVisits: 1,
        visitorVisits: others,
        newVisitors: 0,
        returningVisitors: others,
      },
      { start: '2026-11-20T13:00:00.000+01:00', ...zero },
    ]);
  });

  it('rolls the same day up into one local day bucket', async () => {
    const others = groupFaces.length - 1;
    const r = await t.call('GET', `/v1/stores/${tenant.storeId}/analytics/traffic?from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z&interval=day`, {
      key: tenant.merchantKey,
    });
    expect(r.body.buckets).toEqual([
      {
        start: '2026-11-20T00:00:00.000+01:00',
        visits: 2 * (1 + others) + strangerFaces,
        uniqueSubjects: 1 + others + strangerFaces,
        memberVisits: 2,
        visitorVisits: 2 * others + strangerFaces,
        newVisitors: others + strangerFaces,
        returningVisitors: 0,
      },
      { start: '2026-11-21T00:00:00.000+01:00', visits: 0, uniqueSubjects: 0, memberVisits: 0, visitorVisits: 0, newVisitors: 0, returningVisitors: 0 },
    ]);
  });

  it('splits demographics over the same visits, and awards perks once per cooldown', async () => {
    const r = await t.call('GET', `/v1/stores/${tenant.storeId}/analytics/demographics?from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z&interval=day`, {
      key: tenant.merchantKey,
    });
    const { visits, gender, age } = r.body.buckets[0];
    expect(visits).toBe(2 * groupFaces.length + strangerFaces);
    expect(gender.male + gender.female + gender.unknown).toBe(visits);
    expect(Object.values(age as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(visits);

    // 09:00 and 11:00 earn points; 09:05 is inside the 10-minute cooldown.
    const person = await t.call('GET', `/v1/people/${memberId}`, { key: tenant.merchantKey });
    expect(person.body.points).toBe(10);
  });
});
