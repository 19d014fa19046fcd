/**
 * The service as `npm start` runs it — the API and its supervised worker processes — losing
 * nothing when workers are stopped gracefully or killed mid-job.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { createQueues } from '../../src/queue/queues.js';
import { serviceSpecs, Supervisor, workerGroups, type ChildExit } from '../../src/supervisor.js';
import { multipart } from '../api/support.js';
import { createTestEnvironment, type TestEnvironment } from '../support/services.js';
import { freePort } from '../support/global-setup.js';
import { fixture, waitFor } from './support.js';

const root = path.resolve(import.meta.dirname, '../..');
let env: TestEnvironment;
let supervisor: Supervisor;
let api: string;
const adminKey = randomBytes(24).toString('hex');

async function call(method: string, route: string, key: string, json?: unknown) {
  const response = await fetch(api + route, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(json ? { 'content-type': 'application/json' } : {}) },
    body: json ? JSON.stringify(json) : undefined,
  });
  return { status: response.status, body: (await response.json()) as any };
}

async function uploadFixtures(deviceKey: string): Promise<string[]> {
  const parts = [];
  for (let i = 1; i <= 6; i++) parts.push({ name: 'images', file: await fixture(`sample${i}.jpg`), filename: `sample${i}.jpg` });
  const { body, contentType } = multipart(parts);
  const response = await fetch(`${api}/v1/captures`, { method: 'POST', headers: { authorization: `Bearer ${deviceKey}`, 'content-type': contentType }, body: new Uint8Array(body) });
  expect(response.status).toBe(202);
  return ((await response.json()) as { captures: { id: string }[] }).captures.map((c) => c.id);
}

async function statuses(ids: string[]): Promise<string[]> {
  return (await env.db('captures').whereIn('id', ids).select('status')).map((row) => row.status);
}

async function expectAllDoneOnce(ids: string[]) {
  await waitFor(async () => (await statuses(ids)).every((status) => status === 'done'), 150_000, 'every capture done');
  const rows = await env.db('captures').whereIn('id', ids).select('id', 'face_count');
  for (const row of rows) {
    const faces = await env.db('faces').where({ capture_id: row.id }).count({ n: '*' });
    const sightings = await env.db('sightings').where({ capture_id: row.id }).count({ n: '*' });
    expect(Number(faces[0].n)).toBe(row.face_count);
    expect(Number(sightings[0].n)).toBe(row.face_count);
  }
}

beforeAll(async () => {
  env = await createTestEnvironment();
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  const childEnv = {
    ...process.env,
    DATABASE_URL: env.config.DATABASE_URL,
    DATA_DIR: env.config.DATA_DIR,
    MODELS_DIR: env.config.modelsDir,
    QUEUE_PREFIX: env.config.QUEUE_PREFIX,
    CHROMA_URL: env.config.chromaUrl,
    PORT: String(port),
    FACEPERKS_ADMIN_KEY: adminKey,
    JOB_LOCK_MS: '3000',
    STAGE_BACKOFF_MS: '200',
    SHUTDOWN_UNREADY_MS: '0',
    LOG_LEVEL: 'error',
  };
  supervisor = new Supervisor(root, childEnv, createLogger('silent', 'test-supervisor'));
  for (const spec of serviceSpecs(root, env.config)) supervisor.start(spec);
  await waitFor(() => fetch(`${api}/readyz`).then((r) => r.ok, () => false), 90_000, 'the API to be ready');
}, 120_000);

afterAll(async () => {
  await supervisor?.stop(10_000);
  await env?.cleanup();
});

describe('supervised worker processes', () => {
  let merchantId: string;
  let storeId: string;
  const newDevice = async (name: string) => (await call('POST', `/v1/stores/${storeId}/devices`, adminKey, { name })).body.key as string;

  it('drains on SIGTERM: a vision job running when the signal came completes in the same process before it exits', async () => {
    merchantId = (await call('POST', '/v1/merchants', adminKey, { name: 'Proc Co' })).body.id;
    storeId = (await call('POST', '/v1/stores', adminKey, { merchantId, name: 'Depot', timezone: 'UTC' })).body.id;
    const pipelines = workerGroups(env.config.PIPELINE_PROCESSES).filter((group) => group.workers.includes('vision'));
    const exits = new Map<string, ChildExit & { at: number }>();
    const onExit = (exit: ChildExit) => {
      if (!exits.has(exit.name)) exits.set(exit.name, { ...exit, at: Date.now() });
    };
    supervisor.on('exit', onExit);
    const queues = createQueues(env.config);
    try {
      // Every pipeline process has started its workers (and installed its signal handlers): one still
      // loading its models dies of the signal itself, having no job to drain.
      await waitFor(async () => (await queues.queue('vision').getWorkersCount()) >= pipelines.length, 90_000, 'every pipeline process to consume vision');
      const ids = await uploadFixtures(await newDevice('robot-term'));

      // A vision job (seconds of inference) is running: its lock is held by one of the processes.
      await waitFor(async () => (await queues.queue('vision').getJobs(['active'])).length > 0, 60_000, 'a vision job to be active');
      for (const group of workerGroups(env.config.PIPELINE_PROCESSES)) expect(supervisor.signal(group.name, 'SIGTERM')).toBe(true);
      // Listed after the signal: these were running when it came (a draining worker takes no new job).
      const running = (await queues.queue('vision').getJobs(['active'])).map((job) => job.id!);
      expect(running.length, 'vision jobs running when SIGTERM was sent').toBeGreaterThan(0);

      await expectAllDoneOnce(ids);
      // Each pipeline process drained and exited by itself (code 0), not killed.
      for (const group of pipelines) expect(exits.get(group.name), `${group.name} of ${JSON.stringify([...exits.values()])}`).toMatchObject({ code: 0, signal: null });
      const lastExitAt = Math.max(...pipelines.map((group) => exits.get(group.name)!.at));

      // Each job running at the signal finished in its first attempt, never found stalled, and before
      // the signalled processes had all exited: restarted processes, or stalled-job recovery (which
      // only follows a lock left behind), would have come later and counted a stall.
      for (const id of running) {
        const job = (await queues.queue('vision').getJob(id))!;
        expect({ id, stalled: job.stalledCounter, started: job.attemptsStarted, made: job.attemptsMade, completed: job.returnvalue !== null }).toEqual({
          id,
          stalled: 0,
          started: 1,
          made: 1,
          completed: true,
        });
        expect(job.finishedOn!).toBeLessThanOrEqual(lastExitAt);
      }
    } finally {
      supervisor.off('exit', onExit);
      await queues.close();
    }
  });

  it('recovers the jobs of pipeline processes killed mid-job (SIGKILL), once their locks expire', async () => {
    const ids = await uploadFixtures(await newDevice('robot-kill'));
    await waitFor(async () => (await statuses(ids)).some((s) => s === 'processing'), 60_000, 'processing to start');
    const pipelines = workerGroups(env.config.PIPELINE_PROCESSES).filter((group) => group.workers.includes('vision'));
    for (const group of pipelines) expect(supervisor.signal(group.name, 'SIGKILL')).toBe(true);

    await expectAllDoneOnce(ids);
  });
});
