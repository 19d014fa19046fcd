/**
 * Model-pack migration (`faceperks reembed`): enrolled faces are embedded into the new pack's
 * collections in the background, the active pack switches when that is complete, stragglers enrolled
 * by old-pack workers are caught up, and pack-bound worker processes restart on the new pack.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChromaGallery } from '../../src/gallery/chroma-gallery.js';
import { REEMBED_QUEUE } from '../../src/queue/contract.js';
import { activePack, setActivePack } from '../../src/storage/settings.js';
import { RESTART_EXIT_CODE } from '../../src/supervisor.js';
import { startWorkers } from '../../workers/runner.js';
import { seedTenant, upload } from '../api/support.js';
import { runCli } from '../cli/support.js';
import { createTestEnvironment } from '../support/services.js';
import { cropAround, facesIn, fixture, modelsWithRetinaface, retinafaceAvailable, retinafaceSkipReason, startTestService, waitFor, type TestService } from './support.js';

const available = retinafaceAvailable;
const why = retinafaceSkipReason;

const root = path.resolve(import.meta.dirname, '../..');
let t: TestService;
let modelsDir: string;
let tenant: Awaited<ReturnType<typeof seedTenant>>;
let group: Buffer;
let groupFaces: Awaited<ReturnType<typeof facesIn>>;

beforeAll(async () => {
  if (!available) return;
  modelsDir = modelsWithRetinaface('reembed');
  t = await startTestService({ MODELS_DIR: modelsDir });
  tenant = await seedTenant(t, 'Reembed Co');
  group = await fixture('sample1.jpg');
  groupFaces = await facesIn(group, t.env.config.modelsDir);
}, 120_000);

afterAll(async () => {
  await t?.close();
  if (modelsDir) fs.rmSync(modelsDir, { recursive: true, force: true });
});

async function enrol(personId: string, faceIndex: number): Promise<string> {
  const portrait = await cropAround(group, groupFaces[faceIndex], 0.6, 400);
  const r = await upload(t, tenant.merchantKey, [{ name: 'image', file: portrait, filename: `face${faceIndex}.jpg` }], `/v1/people/${personId}/faces`);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.faceId;
}

async function finished(jobId: string) {
  return waitFor(
    async () => {
      const r = await t.call('GET', `/v1/reembed/${jobId}`, { key: t.adminKey });
      expect(r.status).toBe(200);
      return r.body.state === 'completed' || r.body.state === 'failed' ? r.body : undefined;
    },
    120_000,
    `reembed job ${jobId}`,
  );
}

const vectors = (pack: string, personId: string) => new ChromaGallery(t.env.config.chromaUrl, pack).countSubjectVectors('member', tenant.merchantId, personId);

describe.runIf(available)(`reembed${why}`, () => {
  let adaId: string;

  it('builds the retinaface collections from the enrolment images, then switches the active pack', async () => {
    expect(await activePack(t.env.db, t.env.config.MODEL_PACK)).toBe('default');
    const person = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Ada' } });
    adaId = person.body.id;
    await enrol(adaId, 0);
    expect(await vectors('default', adaId)).toBe(1);
    expect(await vectors('retinaface', adaId)).toBe(0);

    const forbidden = await t.call('POST', '/v1/reembed', { key: tenant.merchantKey, json: { pack: 'retinaface' } });
    expect([forbidden.status, forbidden.body.error.code]).toEqual([403, 'forbidden']);
    const unknown = await t.call('POST', '/v1/reembed', { key: t.adminKey, json: { pack: 'yolo' } });
    expect([unknown.status, unknown.body.error.code]).toEqual([400, 'validation_error']);
    const active = await t.call('POST', '/v1/reembed', { key: t.adminKey, json: { pack: 'default' } });
    expect([active.status, active.body.error.code]).toEqual([409, 'pack_active']);

    const accepted = await t.call('POST', '/v1/reembed', { key: t.adminKey, json: { pack: 'retinaface' } });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    expect(accepted.body).toMatchObject({ pack: 'retinaface', activePack: 'default', jobId: expect.any(String) });
    const job = await finished(accepted.body.jobId);
    expect(job.state, JSON.stringify(job)).toBe('completed');
    expect(job.result).toMatchObject({ pack: 'retinaface', faces: 1, alreadyPresent: 0, reembedded: 1, failedCount: 0, switched: true });
    expect(job.progress).toMatchObject({ done: 1, total: 1, failed: 0 });

    expect(await activePack(t.env.db, t.env.config.MODEL_PACK)).toBe('retinaface');
    expect(await vectors('retinaface', adaId)).toBe(1);
    // The old pack's collection is left as it was (a switch back only fills what is missing).
    expect(await vectors('default', adaId)).toBe(1);

    const again = await t.call('POST', '/v1/reembed', { key: t.adminKey, json: { pack: 'retinaface' } });
    expect([again.status, again.body.error.code]).toEqual([409, 'pack_active']);
  }, 180_000);

  it('catches up a face enrolled by an old-pack worker after the switch', async () => {
    // The in-process interactive worker still runs the default pack, as a worker that has not restarted yet would.
    const person = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Bea' } });
    await enrol(person.body.id, 1);
    expect(await vectors('default', person.body.id)).toBe(1);
    const catchUp = await waitFor(
      async () => (await t.queues.queue(REEMBED_QUEUE).getJobs(['completed'])).find((job) => job.data.catchUp === true),
      60_000,
      'the catch-up job',
    );
    expect(catchUp.data.pack).toBe('retinaface');
    expect(catchUp.returnvalue).toMatchObject({ reembedded: 1, failedCount: 0, switched: false });
    expect(await vectors('retinaface', person.body.id)).toBe(1);
  }, 120_000);

  it('recognises the member with the retinaface pack once workers run on it', async () => {
    const old = t.workers.find((worker) => worker.name === 'interactive')!;
    await old.close();
    t.workers.splice(t.workers.indexOf(old), 1);
    const config = { ...t.context.config, MODEL_PACK: 'retinaface' as const };
    t.workers.push(...(await startWorkers(['interactive'], { ...t.context, config, gallery: new ChromaGallery(config.chromaUrl, 'retinaface') })).workers);

    const probe = await cropAround(group, groupFaces[0], 0.9, 300, 70);
    const r = await upload(t, tenant.merchantKey, [{ name: 'image', file: probe, filename: 'probe.jpg' }], '/v1/identify');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.faces[0].matches[0]).toMatchObject({ personId: adaId });
  }, 120_000);

  it('refuses a second migration while one is under way, and fails one whose model files are missing', async () => {
    const reembedWorker = t.workers.find((worker) => worker.name === REEMBED_QUEUE)!;
    await reembedWorker.pause();
    const first = await t.call('POST', '/v1/reembed', { key: t.adminKey, json: { pack: 'insightface' } });
    expect(first.status).toBe(202);
    const same = await t.call('POST', '/v1/reembed', { key: t.adminKey, json: { pack: 'insightface' } });
    expect([same.status, same.body.jobId, same.body.alreadyRunning]).toEqual([202, first.body.jobId, true]);
    const other = await t.call('POST', '/v1/reembed', { key: t.adminKey, json: { pack: 'default' } });
    expect([other.status, other.body.error.code]).toEqual([409, 'reembed_in_progress']);
    reembedWorker.resume();

    const job = await finished(first.body.jobId);
    expect(job.state).toBe('failed');
    expect(job.error).toMatch(/pack insightface is not installed: model file missing: .*scrfd_500m\.onnx/);
    expect(job.attempts).toBe(1);
    expect(await activePack(t.env.db, t.env.config.MODEL_PACK)).toBe('retinaface');
    const missing = await t.call('GET', '/v1/reembed/999999', { key: t.adminKey });
    expect(missing.status).toBe(404);
  }, 120_000);

  it('restarts a pack-bound worker process when the active pack changes', async () => {
    const { config } = t.env;
    const child = fork(path.join(root, 'workers/runner.ts'), ['vision'], {
      cwd: root,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: {
        ...process.env,
        DATABASE_URL: config.DATABASE_URL,
        DATA_DIR: config.DATA_DIR,
        MODELS_DIR: modelsDir,
        QUEUE_PREFIX: config.QUEUE_PREFIX,
        CHROMA_URL: config.chromaUrl,
        MODEL_PACK: 'default',
        PACK_WATCH_MS: '200',
        LOG_LEVEL: 'info',
      },
    });
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(async () => /"msg":"workers started"/.test(output), 60_000, 'the vision worker to start');
      // It started on the stored active pack, not on MODEL_PACK.
      expect(output).toMatch(/"pack":"retinaface"/);
      await setActivePack(t.env.db, 'default');
      expect(await exited).toBe(RESTART_EXIT_CODE);
      expect(output).toMatch(/active model pack changed/);
    } finally {
      child.kill('SIGKILL');
    }
  }, 90_000);
});

describe.runIf(available)(`faceperks reembed${why}`, () => {
  it('queues a migration with the admin key and follows it with --wait', async () => {
    // The previous test set 'default' active again; retinaface's collections are complete, so the job only switches.
    expect(await activePack(t.env.db, t.env.config.MODEL_PACK)).toBe('default');
    const env = { FACEPERKS_URL: t.url, FACEPERKS_ADMIN_KEY: t.adminKey };
    const usage = await runCli(['reembed'], env);
    expect([usage.code, usage.stderr]).toEqual([2, expect.stringMatching(/missing --pack/)]);
    const merchant = await runCli(['reembed', '--pack', 'retinaface'], { ...env, FACEPERKS_ADMIN_KEY: tenant.merchantKey });
    expect([merchant.code, merchant.stderr]).toEqual([2, expect.stringMatching(/403|admin key/)]);

    const r = await runCli(['reembed', '--pack', 'retinaface', '--wait'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ state: 'completed', pack: 'retinaface', activePack: 'retinaface', result: { faces: 2, alreadyPresent: 2, reembedded: 0, switched: true } });

    const active = await runCli(['reembed', '--pack', 'retinaface'], env);
    expect([active.code, active.stderr]).toEqual([2, expect.stringMatching(/already the active pack/)]);
  }, 120_000);
});

describe('activePack', () => {
  it('is the stored setting when present and known, else the configured pack', async () => {
    const env = await createTestEnvironment();
    try {
      expect(await activePack(env.db, 'default')).toBe('default');
      expect(await activePack(env.db, 'insightface')).toBe('insightface');
      await setActivePack(env.db, 'retinaface');
      expect(await activePack(env.db, 'default')).toBe('retinaface');
      await setActivePack(env.db, 'insightface');
      expect(await env.db('service_settings').count({ n: '*' })).toEqual([{ n: 1 }]);
      expect(await activePack(env.db, 'default')).toBe('insightface');
      await env.db('service_settings').update({ value: 'retired-pack' });
      expect(await activePack(env.db, 'default')).toBe('default');
      // A worker started against a database not migrated yet keeps to its configuration.
      await env.db.schema.dropTable('service_settings');
      expect(await activePack(env.db, 'retinaface')).toBe('retinaface');
    } finally {
      await env.cleanup();
    }
  });
});
