/** Re-running finished captures through the pipeline replaces their results without doubling anything. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reprocessPage } from '../../src/services/reprocess.js';
import { startWorkers } from '../../workers/runner.js';
import { makeImage, seedTenant, upload } from '../api/support.js';
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

/** The reprocess job's progress once it completed. */
async function finished(key: string, jobId: string) {
  return waitFor(async () => {
    const status = await t.call('GET', `/v1/reprocess/${jobId}`, { key });
    expect(status.status).toBe(200);
    expect(status.body.state).not.toBe('failed');
    return status.body.state === 'completed' ? status.body.progress : undefined;
  }, 60_000, 'the reprocess job to complete');
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
    expect([accepted.status, accepted.body]).toEqual([202, { jobId: expect.any(String), state: 'waiting', total: 2 }]);
    expect(accepted.headers.get('location')).toBe(`/v1/reprocess/${accepted.body.jobId}`);
    expect(await finished(tenant.merchantKey, accepted.body.jobId)).toEqual({ total: 2, done: 2, queued: 2, imageGone: 0 });
    expect((await t.call('GET', `/v1/reprocess/${accepted.body.jobId}`, { key: other.merchantKey })).status).toBe(404);
    await allDone(ids, 1);

    expect(await snapshot(ids)).toEqual(before);

    const byRange = await t.call('POST', '/v1/reprocess', {
      key: tenant.merchantKey,
      json: { storeId: tenant.storeId, from: '2026-11-21T09:05:00Z', to: '2026-11-21T10:00:00Z' },
    });
    expect([byRange.status, byRange.body.total]).toEqual([202, 1]);
    expect(await finished(tenant.merchantKey, byRange.body.jobId)).toEqual({ total: 1, done: 1, queued: 1, imageGone: 0 });
    await allDone([ids[1]], 2);
    expect(await snapshot(ids)).toEqual(before);
  }, 240_000);
});

describe('the reprocess job', () => {
  it('walks a range a page at a time in (capturedAt, id) order, each capture once', async () => {
    const tenant = await seedTenant(t, 'Paged Co');
    const r = await upload(t, tenant.deviceKey, [
      ...['09:00', '09:00', '09:30'].map((at) => ({ name: 'capturedAt', value: `2026-11-22T${at}:00Z` })),
      { name: 'images', file: await makeImage('jpeg', 64) },
      { name: 'images', file: await makeImage('jpeg', 64) },
      { name: 'images', file: await makeImage('jpeg', 64) },
    ]);
    const ids = (r.body.captures as { id: string }[]).map((c) => c.id);
    await allDone(ids, 0);
    const deps = { db: t.env.db, queues: t.queues, lifecycle: t.context.lifecycle };
    const selection = { storeId: tenant.storeId, from: '2026-11-22T00:00:00.000Z', to: '2026-11-23T00:00:00.000Z' };
    const first = await reprocessPage(deps, tenant.merchantId, selection, undefined, 2);
    expect([first.seen, first.queued, first.next?.capturedAt]).toEqual([2, 2, '2026-11-22T09:00:00.000Z']);
    const second = await reprocessPage(deps, tenant.merchantId, selection, first.next, 2);
    expect([second.seen, second.queued, second.next]).toEqual([1, 1, undefined]);
    await allDone(ids, 1);
  });

  it('waits while the pipeline backlog is above half the intake limit, then runs', async () => {
    const busy = await startTestService({ KEEP_IMAGES: 'true', MAX_QUEUE_DEPTH: '2' }, { workers: false });
    try {
      const tenant = await seedTenant(busy, 'Busy Co');
      const r = await upload(busy, tenant.deviceKey, await Promise.all([1, 2, 3].map(async () => ({ name: 'images', file: await makeImage('jpeg', 64) }))));
      expect(r.status).toBe(202);
      const operations = await startWorkers(['operations'], busy.context);
      try {
        const job = await busy.call('POST', '/v1/reprocess', { key: tenant.merchantKey, json: { batchId: r.body.batchId } });
        expect(job.status).toBe(202);
        // Three vision jobs wait, the limit is one: the job yields before its first page.
        const waiting = await waitFor(async () => {
          const status = await busy.call('GET', `/v1/reprocess/${job.body.jobId}`, { key: tenant.merchantKey });
          return status.body.state === 'delayed' ? status.body : undefined;
        }, 20_000, 'the job to yield');
        expect(waiting.progress).toEqual({ total: 3, done: 0, queued: 0, imageGone: 0 });
        await busy.startWorkers();
        const ids = (r.body.captures as { id: string }[]).map((c) => c.id);
        await waitFor(async () => {
          const status = await busy.call('GET', `/v1/reprocess/${job.body.jobId}`, { key: tenant.merchantKey });
          return status.body.state === 'completed' ? status.body : undefined;
        }, 60_000, 'the job to complete');
        await waitFor(async () => {
          const rows = await busy.env.db('captures').whereIn('id', ids).select('status', 'run');
          return rows.every((row) => row.status === 'done' && row.run === 1);
        }, 60_000, 'the captures done under run 1');
      } finally {
        await operations.close();
      }
    } finally {
      await busy.close();
    }
  }, 120_000);
});
