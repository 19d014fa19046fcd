/**
 * Nothing a stage hands on needs a shared disk: the API (`npm run api`'s entry) and a worker process
 * (`npm run worker`'s) run as two "hosts" with different DATA_DIRs, sharing only the object store,
 * MySQL, Redis and Chroma. The API host has no model files at all. Every capture ends done, with
 * the same faces and subjects as the single-host, local-disk run of the same photos.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startS3Server } from '../../scripts/s3-server.js';
import { createTestEnvironment } from '../support/services.js';
import { freePort } from '../support/global-setup.js';
import { apiCaller, seedTenant, upload, type TestApi } from '../api/support.js';
import { fixture, startTestService, waitFor } from './support.js';

const root = path.resolve(import.meta.dirname, '../..');
const PHOTOS = ['sample1.jpg', 'sample2.jpg', 'sample3.jpg'];
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

function startHost(script: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, script), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output = (output + chunk).slice(-4000)));
  child.stderr!.on('data', (chunk) => (output = (output + chunk).slice(-4000)));
  child.once('exit', (code) => {
    if (code !== 0 && code !== null) console.error(`${script} exited ${code}: ${output}`);
  });
  cleanups.push(async () => {
    if (child.exitCode !== null) return;
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
  });
  return child;
}

/** What a client sees of each capture: faces in order, with their boxes and subject kinds. */
async function results(t: Pick<TestApi, 'call'>, key: string, ids: string[]) {
  return Promise.all(
    ids.map(async (id) => {
      const capture = await waitFor(
        async () => {
          const r = await t.call('GET', `/v1/captures/${id}`, { key });
          return r.body.status === 'done' || r.body.status === 'failed' ? r.body : undefined;
        },
        120_000,
        `capture ${id}`,
      );
      const faces = capture.faces as { box: Record<string, number>; match: { kind: string } | null }[];
      return { status: capture.status, faces: faces.map((face) => ({ box: face.box, kind: face.match?.kind ?? null })) };
    }),
  );
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
}

describe('two hosts, one object store', () => {
  it('the API and the pipeline share no disk, and give the single-host results', async () => {
    const s3 = await startS3Server();
    cleanups.push(() => s3.stop());
    const env = await createTestEnvironment();
    cleanups.push(() => env.cleanup());
    const [apiDir, workerDir] = await Promise.all(['api', 'worker'].map((host) => fs.mkdtemp(path.join(os.tmpdir(), `faceperks-host-${host}-`))));
    cleanups.push(() => fs.rm(apiDir, { recursive: true, force: true }), () => fs.rm(workerDir, { recursive: true, force: true }));

    const adminKey = randomBytes(24).toString('hex');
    const port = await freePort();
    const shared = {
      ...process.env,
      ...s3.env,
      DATABASE_URL: env.config.DATABASE_URL,
      QUEUE_PREFIX: env.config.QUEUE_PREFIX,
      CHROMA_URL: process.env.CHROMA_URL!,
      FACEPERKS_ADMIN_KEY: adminKey,
      LOG_LEVEL: 'warn',
    };
    startHost('src/api/main.ts', [], { ...shared, DATA_DIR: apiDir, MODELS_DIR: path.join(apiDir, 'no-models'), PORT: String(port) });
    startHost('workers/runner.ts', ['vision', 'match', 'aggregate'], { ...shared, DATA_DIR: workerDir, MODELS_DIR: env.config.modelsDir });

    const url = `http://127.0.0.1:${port}`;
    const ready = await waitFor(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200 || undefined, 60_000, 'the API host to be ready');
    expect(ready).toBe(true);
    const api = { call: apiCaller(url), adminKey } as TestApi;
    const photos = await Promise.all(PHOTOS.map(async (name) => ({ name: 'images', file: await fixture(name), filename: name })));

    const tenant = await seedTenant(api, 'Two Hosts');
    const sent = await upload(api, tenant.deviceKey, photos);
    expect(sent.status).toBe(202);
    const twoHosts = await results(api, tenant.merchantKey, sent.body.captures.map((c: { id: string }) => c.id));

    // Neither host kept a blob on its own disk: uploads are in the object store.
    expect((await filesUnder(path.join(apiDir, 'blobs'))).concat(await filesUnder(path.join(workerDir, 'blobs')))).toEqual([]);
    expect((await filesUnder(s3.directory)).length).toBeGreaterThanOrEqual(PHOTOS.length);

    const single = await startTestService();
    cleanups.push(() => single.close());
    const local = await seedTenant(single, 'One Host');
    const sentLocally = await upload(single, local.deviceKey, photos);
    const oneHost = await results(single, local.merchantKey, sentLocally.body.captures.map((c: { id: string }) => c.id));

    expect(twoHosts.every((capture) => capture.status === 'done')).toBe(true);
    expect(twoHosts.some((capture) => capture.faces.length > 0)).toBe(true);
    expect(twoHosts).toEqual(oneHost);
  }, 240_000);
});
