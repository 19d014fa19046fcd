/** Re-running finished captures through the pipeline replaces their results without doubling anything. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedTenant, upload } from '../api/support.js';
import { fixture, startTestService, waitFor, type TestService } from './support.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService({ KEEP_IMAGES: 'true' });
});
afterAll(async () => {
  await t?.close();
});

async function snapshot(captureIds: string[]) {
  const db = t.env.db;
  return {
    faces: await db('faces').whereIn('capture_id', captureIds).orderBy(['capture_id', 'face_index']).select('id', 'face_index', 'match_kind', 'visitor_id', 'person_id'),
    sightings: await db('sightings').whereIn('capture_id', captureIds).orderBy('face_id').select('face_id', 'subject_id', 'seen_at'),
    visits: await db('visits').orderBy(['subject_id', 'started_at']).select('subject_id', 'started_at', 'ended_at'),
    visitors: await db('visitors').orderBy('id').pluck('id'),
  };
}

async function allDone(captureIds: string[], run: number) {
  await waitFor(async () => {
    const rows = await t.env.db('captures').whereIn('id', captureIds).select('status', 'run');
    return rows.every((row) => row.status === 'done' && row.run === run);
  }, 120_000, 'captures done');
}

describe('reprocess', () => {
  it('re-runs a batch and leaves faces, sightings, visits and visitors exactly as they were', async () => {
    const tenant = await seedTenant(t, 'Again Co');
    const r = await upload(t, tenant.deviceKey, [
      { name: 'capturedAt', value: '2026-11-21T09:00:00Z' },
      { name: 'capturedAt', value: '2026-11-21T09:10:00Z' },
      { name: 'images', file: await fixture('sample5.jpg') },
      { name: 'images', file: await fixture('sample6.jpg') },
    ]);
    const ids = (r.body.captures as { id: string }[]).map((c) => c.id);
    await allDone(ids, 0);
    const before = await snapshot(ids);
    expect(before.faces.length).toBeGreaterThan(4);

    const other = await seedTenant(t, 'Nosy Co');
    const refused = await t.call('POST', '/v1/reprocess', { key: other.merchantKey, json: { batchId: r.body.batchId } });
    expect(refused.status).toBe(404);
    const accepted = await t.call('POST', '/v1/reprocess', { key: tenant.merchantKey, json: { batchId: r.body.batchId } });
    expect([accepted.status, accepted.body]).toEqual([202, { queued: 2, imageGone: 0 }]);
    await allDone(ids, 1);

    expect(await snapshot(ids)).toEqual(before);

    const byRange = await t.call('POST', '/v1/reprocess', {
      key: tenant.merchantKey,
      json: { storeId: tenant.storeId, from: '2026-11-21T09:05:00Z', to: '2026-11-21T10:00:00Z' },
    });
    expect([byRange.status, byRange.body]).toEqual([202, { queued: 1, imageGone: 0 }]);
    await allDone([ids[1]], 2);
    expect(await snapshot(ids)).toEqual(before);
  }, 240_000);
});
