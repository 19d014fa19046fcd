/**
 * Resuming an interrupted reembed (issue 18): an attempt that stops after storing some faces in the
 * target pack (here its second Chroma write fails, and its worker is closed) is retried by a fresh
 * worker, which embeds only the faces still missing from the target collections.
 */
import fs from 'node:fs';
import type { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChromaGallery } from '../../src/gallery/chroma-gallery.js';
import type { Gallery } from '../../src/gallery/gallery.js';
import { REEMBED_QUEUE } from '../../src/queue/contract.js';
import { activePack } from '../../src/storage/settings.js';
import { startReembedWorker } from '../../workers/reembed.js';
import { startWorkers, type RunningWorkers } from '../../workers/runner.js';
import { seedTenant, upload } from '../api/support.js';
import { cropAround, facesIn, fixture, modelsWithRetinaface, retinafaceAvailable, retinafaceSkipReason, startTestService, waitFor, type TestService } from './support.js';

const available = retinafaceAvailable;
const why = retinafaceSkipReason;

let t: TestService;
let modelsDir: string;
let interactive: RunningWorkers | undefined;
const reembedWorkers: Worker[] = [];

beforeAll(async () => {
  if (!available) return;
  modelsDir = modelsWithRetinaface('reembed-resume');
  // Enrolment only: the reembed workers are this test's own.
  t = await startTestService({ MODELS_DIR: modelsDir }, { workers: false });
  interactive = await startWorkers(['interactive'], t.context);
}, 120_000);

afterAll(async () => {
  await Promise.all(reembedWorkers.map((worker) => worker.close()));
  await interactive?.close();
  await t?.close();
  if (modelsDir) fs.rmSync(modelsDir, { recursive: true, force: true });
});

/**
 * The retinaface gallery as a reembed worker sees it, recording the vector ids it stores; with
 * `failFrom`, that write and every later one fail (Chroma gone mid-job).
 */
function recordingGallery(stored: string[], failFrom = Infinity): Gallery {
  const real = new ChromaGallery(t.env.config.chromaUrl, 'retinaface');
  return new Proxy(real, {
    get(target, property, receiver) {
      if (property === 'upsert') {
        return async (...args: Parameters<ChromaGallery['upsert']>) => {
          if (stored.length + 1 >= failFrom) throw new Error('chroma went away');
          await target.upsert(...args);
          stored.push(args[3]);
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** A reembed worker whose target-pack gallery is `gallery` (the context's own gallery when its pack is the target). */
async function reembedWorker(gallery: Gallery): Promise<Worker> {
  const worker = await startReembedWorker({ ...t.context, config: { ...t.context.config, MODEL_PACK: 'retinaface' }, gallery });
  reembedWorkers.push(worker);
  return worker;
}

describe.runIf(available)(`an interrupted reembed${why}`, () => {
  it('continues where it stopped: the retry embeds only the faces the target pack is missing', async () => {
    const tenant = await seedTenant(t, 'Resume Co');
    const group = await fixture('sample1.jpg');
    const boxes = await facesIn(group, t.env.config.modelsDir);
    const faceIds: string[] = [];
    for (const [i, box] of boxes.slice(0, 3).entries()) {
      const person = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: `P${i}` } });
      const portrait = await cropAround(group, box, 0.6, 400);
      const r = await upload(t, tenant.merchantKey, [{ name: 'image', file: portrait, filename: `p${i}.jpg` }], `/v1/people/${person.body.id}/faces`);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      faceIds.push(r.body.faceId);
    }
    const retinaface = new ChromaGallery(t.env.config.chromaUrl, 'retinaface');

    // First attempt: stores one face, then its second write fails.
    const firstAttempt: string[] = [];
    const first = await reembedWorker(recordingGallery(firstAttempt, 2));
    const accepted = await t.call('POST', '/v1/reembed', { key: t.adminKey, json: { pack: 'retinaface' } });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const queue = t.queues.queue(REEMBED_QUEUE);
    const job = await waitFor(async () => {
      const found = await queue.getJob(accepted.body.jobId);
      return found && (await found.getState()) === 'delayed' ? found : undefined;
    }, 60_000, 'the first attempt to fail and wait for its retry');
    await first.close();
    expect(firstAttempt).toHaveLength(1);
    expect(faceIds).toContain(firstAttempt[0]);
    expect(await retinaface.vectorIds('member', tenant.merchantId)).toEqual(new Set(firstAttempt));
    expect(await activePack(t.env.db, t.env.config.MODEL_PACK)).toBe('default');

    // The retry, on a fresh worker, at once (its backoff is 30 s).
    const secondAttempt: string[] = [];
    await reembedWorker(recordingGallery(secondAttempt));
    await job.promote();
    const finished = await waitFor(async () => {
      const found = (await queue.getJob(accepted.body.jobId))!;
      const state = await found.getState();
      return state === 'completed' || state === 'failed' ? { found, state } : undefined;
    }, 60_000, 'the retried reembed to finish');

    expect([finished.state, finished.found.attemptsMade]).toEqual(['completed', 2]);
    const done = finished.found;
    expect(done.returnvalue).toMatchObject({ pack: 'retinaface', faces: 3, alreadyPresent: 1, reembedded: 2, failedCount: 0, switched: true });
    // The face the first attempt stored is not embedded again; the other two are, once each.
    expect([...secondAttempt].sort()).toEqual(faceIds.filter((id) => id !== firstAttempt[0]).sort());
    expect(await retinaface.vectorIds('member', tenant.merchantId)).toEqual(new Set(faceIds));
    expect(await activePack(t.env.db, t.env.config.MODEL_PACK)).toBe('retinaface');
  }, 120_000);
});
