/**
 * The service as `npm start` runs it — the API and its supervised worker processes — losing
 * nothing when workers are stopped gracefully or killed mid-job.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { serviceSpecs, Supervisor, workerGroups } from '../../src/supervisor.js';
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

  it('finishes every capture of a batch when all workers get SIGTERM mid-batch', async () => {
    merchantId = (await call('POST', '/v1/merchants', adminKey, { name: 'Proc Co' })).body.id;
    storeId = (await call('POST', '/v1/stores', adminKey, { merchantId, name: 'Depot', timezone: 'UTC' })).body.id;
    const ids = await uploadFixtures(await newDevice('robot-term'));

    await waitFor(async () => (await statuses(ids)).some((s) => s !== 'queued'), 60_000, 'processing to start');
    for (const group of workerGroups(env.config.PIPELINE_PROCESSES)) expect(supervisor.signal(group.name, 'SIGTERM')).toBe(true);

    await expectAllDoneOnce(ids);
  });

  it('recovers the jobs of pipeline processes killed mid-job (SIGKILL), once their locks expire', async () => {
    const ids = await uploadFixtures(await newDevice('robot-kill'));
    await waitFor(async () => (await statuses(ids)).some((s) => s === 'processing'), 60_000, 'processing to start');
    const pipelines = workerGroups(env.config.PIPELINE_PROCESSES).filter((group) => group.workers.includes('vision'));
    for (const group of pipelines) expect(supervisor.signal(group.name, 'SIGKILL')).toBe(true);

    await expectAllDoneOnce(ids);
  });
});
