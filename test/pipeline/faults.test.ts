/** Nothing is lost: transient faults are retried to success, and captures whose jobs vanished are swept back in. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startLocalChroma, type LocalChroma } from '../../src/gallery/local-server.js';
import { stageJobId } from '../../src/queue/contract.js';
import { sweepStuckCaptures } from '../../src/services/sweeper.js';
import { seedTenant, upload } from '../api/support.js';
import { freePort } from '../support/global-setup.js';
import { fixture, startTestService, waitFor, type TestService } from './support.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function captureStatus(t: TestService, id: string) {
  return (await t.env.db('captures').where({ id }).first()) as { status: string; run: number; error_code: string | null; face_count: number | null };
}

describe('fault tolerance', () => {
  it('retries a match job while Chroma is down and completes once it is back', async () => {
    const chromaDir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceperks-chroma-fault-'));
    const port = await freePort();
    let chroma: LocalChroma = await startLocalChroma(chromaDir, port);
    cleanups.push(() => fs.rm(chromaDir, { recursive: true, force: true }));
    const t = await startTestService({ CHROMA_URL: chroma.url, STAGE_ATTEMPTS: '12', STAGE_BACKOFF_MS: '250' });
    cleanups.push(() => t.close(), () => chroma.stop());
    const tenant = await seedTenant(t, 'Fault Co');

    await chroma.stop();
    const r = await upload(t, tenant.deviceKey, [{ name: 'images', file: await fixture('sample2.jpg'), filename: 'burst.jpg' }]);
    expect(r.status).toBe(202);
    const captureId = r.body.captures[0].id as string;

    const matchJobId = stageJobId('match', { captureId, run: 0 });
    await waitFor(async () => ((await t.queues.queue('match').getJob(matchJobId))?.attemptsMade ?? 0) >= 1, 60_000, 'a failed match attempt');
    expect((await captureStatus(t, captureId)).status).toBe('processing');

    chroma = await startLocalChroma(chromaDir, port);
    const done = await waitFor(async () => {
      const row = await captureStatus(t, captureId);
      return row.status === 'done' || row.status === 'failed' ? row : undefined;
    }, 90_000, 'the capture to finish');
    expect(done).toMatchObject({ status: 'done', error_code: null });
    expect(done.face_count).toBeGreaterThan(0);
    const sightings = await t.env.db('sightings').where({ capture_id: captureId });
    expect(sightings).toHaveLength(done.face_count!);
  });

  it('re-enqueues a capture whose job Redis lost, and leaves captures with a live job alone', async () => {
    const t = await startTestService({}, { workers: false });
    cleanups.push(() => t.close());
    const tenant = await seedTenant(t, 'Sweep Co');
    const r = await upload(t, tenant.deviceKey, [
      { name: 'images', file: await fixture('sample3.jpg'), filename: 'a.jpg' },
      { name: 'images', file: await fixture('sample4.jpg'), filename: 'b.jpg' },
    ]);
    const [lost, kept] = (r.body.captures as { id: string }[]).map((c) => c.id);

    // Redis restarted without persistence for one of them: its job is gone.
    await (await t.queues.queue('preprocess').getJob(stageJobId('preprocess', { captureId: lost, run: 0 })))!.remove();
    const deps = { db: t.env.db, queues: t.queues, logger: t.context.logger };
    expect(await sweepStuckCaptures(deps, 0)).toBe(1);
    expect(await captureStatus(t, lost)).toMatchObject({ status: 'queued', run: 1 });
    expect(await captureStatus(t, kept)).toMatchObject({ status: 'queued', run: 0 });
    expect(await sweepStuckCaptures(deps, 0)).toBe(0);

    await t.startWorkers();
    for (const id of [lost, kept]) {
      const row = await waitFor(async () => {
        const capture = await captureStatus(t, id);
        return capture.status === 'done' ? capture : undefined;
      }, 90_000, `capture ${id} done`);
      expect(row.face_count).toBeGreaterThan(0);
    }
  });
});
