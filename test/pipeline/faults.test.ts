/**
 * Nothing is lost and only bad input fails: a capture outlives an outage longer than its retries,
 * captures whose jobs vanished are swept back in (every one of them, page after page), the
 * housekeeping timers survive Redis losing every key, and a subject erased mid-pipeline costs its
 * match, never the capture.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startLocalChroma, type LocalChroma } from '../../src/gallery/local-server.js';
import { UnrecoverableError, Worker } from 'bullmq';
import { pipelineJobId } from '../../src/queue/contract.js';
import { redisConnection } from '../../src/queue/queues.js';
import { ResultsService } from '../../src/services/results.js';
import { sweepStuckCaptures } from '../../src/services/sweeper.js';
import { withQueuePrefix } from '../../src/storage/settings.js';
import { createTestEnvironment } from '../support/services.js';
import { seedTenant, upload } from '../api/support.js';
import { freePort } from '../support/global-setup.js';
import { fixture, startTestService, waitFor, type TestService } from './support.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function captureRow(t: TestService, id: string) {
  return (await t.env.db('captures').where({ id }).first()) as { status: string; run: number; error_code: string | null; face_count: number | null };
}

const finished = (t: TestService, id: string, timeoutMs = 90_000) =>
  waitFor(async () => {
    const row = await captureRow(t, id);
    return row.status === 'done' || row.status === 'failed' ? row : undefined;
  }, timeoutMs, `capture ${id} to finish`);

async function uploadFixtures(t: TestService, deviceKey: string, names: string[]): Promise<string[]> {
  const files = await Promise.all(names.map(async (name) => ({ name: 'images', file: await fixture(name), filename: name })));
  const r = await upload(t, deviceKey, files);
  expect(r.status).toBe(202);
  return (r.body.captures as { id: string }[]).map((c) => c.id);
}

describe('outages delay captures, never fail them', () => {
  it('keeps a capture open when Chroma stays down past every retry, and finishes it once Chroma is back', async () => {
    const chromaDir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceperks-chroma-fault-'));
    const port = await freePort();
    let chroma: LocalChroma = await startLocalChroma(chromaDir, port);
    cleanups.push(() => fs.rm(chromaDir, { recursive: true, force: true }));
    const t = await startTestService({
      CHROMA_URL: chroma.url,
      STAGE_ATTEMPTS: '2',
      STAGE_BACKOFF_MS: '100',
      SWEEP_INTERVAL_MS: '300',
      SWEEP_STALE_MS: '500',
      SWEEP_LOST_MS: '500',
    });
    cleanups.push(() => t.close(), () => chroma.stop());
    const tenant = await seedTenant(t, 'Fault Co');

    await chroma.stop();
    const [captureId] = await uploadFixtures(t, tenant.deviceKey, ['sample2.jpg']);
    // Both attempts of the match job fail: the job gives up, the capture does not.
    const matchJob = pipelineJobId('match', { captureId, run: 0 });
    await waitFor(async () => (await (await t.queues.queue('match').getJob(matchJob))?.getState()) === 'failed', 60_000, 'the match job to give up');
    expect((await captureRow(t, captureId)).status).toBe('processing');
    // The sweeper keeps restarting it (under growing waits) while Chroma is down; it never fails it.
    await waitFor(async () => (await captureRow(t, captureId)).run >= 1, 30_000, 'a sweeper restart');
    expect((await captureRow(t, captureId)).status).not.toBe('failed');

    chroma = await startLocalChroma(chromaDir, port);
    const done = await finished(t, captureId);
    expect(done).toMatchObject({ status: 'done', error_code: null });
    expect(done.face_count).toBeGreaterThan(0);
    expect(await t.env.db('sightings').where({ capture_id: captureId })).toHaveLength(done.face_count!);
  });

  it('finishes every capture after Redis loses all its keys, with no process restarted', async () => {
    const t = await startTestService({ SWEEP_INTERVAL_MS: '300', SWEEP_STALE_MS: '500', SWEEP_LOST_MS: '500' }, { workers: false });
    cleanups.push(() => t.close());
    const tenant = await seedTenant(t, 'Flush Co');
    const ids = await uploadFixtures(t, tenant.deviceKey, ['sample3.jpg', 'sample4.jpg']);
    // What a Redis restarted without persistence holds of this deployment: nothing.
    const keys = await t.queues.connection.keys(`${t.env.config.QUEUE_PREFIX}:*`);
    expect(keys.length).toBeGreaterThan(0);
    await t.queues.connection.del(...keys);

    await t.startWorkers();
    for (const id of ids) expect(await finished(t, id)).toMatchObject({ status: 'done', run: 1 });
  });
});

describe('the sweeper', () => {
  it('restarts every capture whose job was lost, page after page, and leaves live and recently given-up ones alone', async () => {
    const t = await startTestService({}, { workers: false });
    cleanups.push(() => t.close());
    const tenant = await seedTenant(t, 'Sweep Co');
    const [lost1, lost2, lost3, live, gaveUp] = await uploadFixtures(t, tenant.deviceKey, ['sample1.jpg', 'sample2.jpg', 'sample3.jpg', 'sample4.jpg', 'sample5.jpg']);
    const vision = t.queues.queue('vision');
    for (const id of [lost1, lost2, lost3, gaveUp]) await (await vision.getJob(pipelineJobId('vision', { captureId: id, run: 0 })))!.remove();
    // A capture on its third run whose job gave up after its retries: taken by hand and failed for good.
    await t.env.db('captures').where({ id: gaveUp }).update({ run: 2 });
    await vision.add('vision', { captureId: gaveUp, run: 2 }, { jobId: pipelineJobId('vision', { captureId: gaveUp, run: 2 }), lifo: true });
    const hand = new Worker('vision', null, { connection: redisConnection(t.env.config), prefix: t.env.config.QUEUE_PREFIX });
    const taken = (await hand.getNextJob('test-token'))!;
    expect(taken.data).toEqual({ captureId: gaveUp, run: 2 });
    await taken.moveToFailed(new UnrecoverableError('match: chroma unreachable'), 'test-token');
    await hand.close();
    const age = async (ids: string[], ms: number) => t.env.db('captures').whereIn('id', ids).update({ updated_at: new Date(Date.now() - ms), status: 'processing' });
    await age([lost1, lost2, lost3, live, gaveUp], 1500);

    const deps = { db: t.env.db, queues: t.queues, lifecycle: t.context.lifecycle, logger: t.context.logger };
    // Lost runs restart once stale (1 s); the given-up run 2 waits 1 s × 2² first; the live one is left alone.
    expect(await sweepStuckCaptures(deps, { staleMs: 1000, lostMs: 1000, pageSize: 2 })).toEqual({ examined: 5, restarted: 3 });
    for (const id of [lost1, lost2, lost3]) expect(await captureRow(t, id)).toMatchObject({ status: 'queued', run: 1 });
    expect(await captureRow(t, live)).toMatchObject({ status: 'processing', run: 0 });
    expect(await captureRow(t, gaveUp)).toMatchObject({ status: 'processing', run: 2 });

    await age([gaveUp], 4500);
    expect(await sweepStuckCaptures(deps, { staleMs: 1000, lostMs: 1000, pageSize: 2 })).toEqual({ examined: 2, restarted: 1 });
    expect(await captureRow(t, gaveUp)).toMatchObject({ status: 'queued', run: 3 });

    await t.startWorkers();
    for (const id of [lost1, lost2, lost3, live, gaveUp]) expect((await finished(t, id)).status).toBe('done');
  });
});

describe('erasure races', () => {
  it('records a capture matched to a person erased before aggregate without that match, and completes it', async () => {
    const t = await startTestService({}, { workers: false });
    cleanups.push(() => t.close());
    const tenant = await seedTenant(t, 'Erase Co');
    const [captureId] = await uploadFixtures(t, tenant.deviceKey, ['sample1.jpg']);
    const personId = randomUUID();
    await t.env.db('people').insert({ id: personId, merchant_id: tenant.merchantId, display_name: 'Gone' });
    await t.env.db('people').where({ id: personId }).delete();

    const face = {
      box: { x: 1, y: 2, width: 30, height: 40 }, score: 0.99, landmarks: [[5, 5], [20, 5], [12, 15], [6, 25], [19, 25]] as [number, number][],
      age: 31, gender: 'male' as const, genderConfidence: 0.8, quality: { eyeDistance: 15, sharpness: 100, yaw: 0 },
    };
    const results = new ResultsService(t.env.db, t.context.lifecycle, { visitGapMinutes: 30, perks: { points: 5, cooldownMinutes: 10 } });
    const saved = await results.save({ captureId, run: 0, faces: [face], matches: [{ faceIndex: 0, kind: 'member', subjectId: personId, similarity: 0.9, newVisitor: false }] });
    expect(saved?.matches).toEqual([]);
    expect(await captureRow(t, captureId)).toMatchObject({ status: 'done', face_count: 1 });
    expect(await t.env.db('faces').where({ capture_id: captureId }).first('match_kind', 'person_id')).toEqual({ match_kind: null, person_id: null });
    expect(await t.env.db('sightings').where({ capture_id: captureId })).toEqual([]);
  });
});

describe('deployments on one Redis', () => {
  it('derive different queue prefixes from their own databases, and the same one for every process of one', async () => {
    const [a, b] = [await createTestEnvironment(), await createTestEnvironment()];
    cleanups.push(() => a.cleanup(), () => b.cleanup());
    const unset = { QUEUE_PREFIX: '' };
    const [prefixA, prefixB, againA] = await Promise.all([withQueuePrefix(a.db, unset), withQueuePrefix(b.db, unset), withQueuePrefix(a.db, unset)]);
    expect(prefixA.QUEUE_PREFIX).toMatch(/^faceperks-[0-9a-f]{12}$/);
    expect(prefixB.QUEUE_PREFIX).not.toBe(prefixA.QUEUE_PREFIX);
    expect(againA.QUEUE_PREFIX).toBe(prefixA.QUEUE_PREFIX);
    expect((await withQueuePrefix(a.db, { QUEUE_PREFIX: 'configured' })).QUEUE_PREFIX).toBe('configured');
  });
});
