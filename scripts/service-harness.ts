/**
 * The whole service as `npm start` runs it (src/service.ts: a supervised local Chroma, the API and
 * every worker process, compiled to JavaScript), started for a benchmark, an evaluation or a chaos
 * run on a throwaway database, data folder and queue prefix, and driven through its public HTTP API
 * only. Needs MariaDB and Redis.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig, type Config } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import type { RestartPolicy } from '../src/supervisor.js';
import type { SupervisedService } from '../src/service.js';
import { connectDatabase } from '../src/storage/db.js';
import { removeQueueKeys } from './queue-keys.js';

const root = path.resolve(import.meta.dirname, '..');

export type Json = Record<string, unknown>;

/** Where a throwaway service lives; `config` is what its processes will read. */
export type ServiceSetup = { env: NodeJS.ProcessEnv; config: Config; adminKey: string; dataDir: string };

export type RunningService = ServiceSetup & { api: string; processes: SupervisedService; stop(): Promise<void> };

export type Tenant = { merchantId: string; storeId: string; merchantKey: string; deviceKey: string };

/** Names the service's database, folder (created when it starts), ports and queue prefix; its Chroma is its own. */
export function prepareService(label: string, overrides: NodeJS.ProcessEnv = {}): ServiceSetup {
  const suffix = randomBytes(4).toString('hex');
  const dataDir = path.join(os.tmpdir(), `faceperks-${label}-${suffix}`);
  const base = loadConfig();
  const databaseUrl = new URL(base.DATABASE_URL);
  databaseUrl.pathname = `/fp_${label}_${suffix}`;
  const adminKey = randomBytes(24).toString('hex');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl.toString(),
    DATA_DIR: dataDir,
    MODELS_DIR: base.modelsDir,
    PORT: String(3900 + Math.floor(Math.random() * 90)),
    CHROMA_PORT: String(8790 + Math.floor(Math.random() * 9)),
    QUEUE_PREFIX: `${label}${suffix}`,
    FACEPERKS_ADMIN_KEY: adminKey,
    LOG_LEVEL: 'warn',
    ...overrides,
  };
  delete env.CHROMA_URL;
  return { env, config: loadConfig(env), adminKey, dataDir };
}

/**
 * Which code the service runs: `compiled` is what `npm start` runs (dist/, built first: a no-op when
 * it is up to date); `source` runs the TypeScript through tsx, for tests that must not build.
 */
export type ServiceCode = 'compiled' | 'source';

export type StartOptions = { code?: ServiceCode; restartPolicy?: RestartPolicy };

async function loadService(code: ServiceCode): Promise<typeof import('../src/service.js')> {
  if (code === 'source') return import('../src/service.js');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  return import(pathToFileURL(path.join(root, 'dist/src/service.js')).href);
}

/** Starts the service as `npm start` does (src/service.ts); resolves once /readyz answers. */
export async function startService(setup: ServiceSetup, options: StartOptions = {}): Promise<RunningService> {
  const { env, config, dataDir } = setup;
  const { startService: startSupervised } = await loadService(options.code ?? 'compiled');
  await fs.mkdir(dataDir, { recursive: true });
  let processes: SupervisedService | undefined;
  const stop = async () => {
    await processes?.stop(10_000);
    await removeQueueKeys(config.REDIS_URL, config.QUEUE_PREFIX).catch((error) => console.warn(`could not remove the queue keys ${config.QUEUE_PREFIX}:*: ${error}`));
    const db = connectDatabase(config, { min: 0, max: 1 });
    await db.raw('DROP DATABASE IF EXISTS ??', [config.databaseName]);
    await db.destroy();
    await fs.rm(dataDir, { recursive: true, force: true });
  };
  const api = `http://127.0.0.1:${env.PORT}`;
  try {
    processes = await startSupervised({ env, logger: createLogger('warn', 'harness'), restartPolicy: options.restartPolicy });
    await waitForReady(api, 90_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { ...setup, api, processes, stop };
}

export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    readonly body: Json,
    message: string,
  ) {
    super(message);
  }
}

export async function call(base: string, key: string, method: string, route: string, body?: Json | FormData): Promise<Json> {
  const response = await fetch(`${base}${route}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body instanceof FormData || !body ? {} : { 'content-type': 'application/json' }) },
    body: body instanceof FormData ? body : body ? JSON.stringify(body) : undefined,
  });
  const json = (await response.json()) as Json;
  if (!response.ok) throw new ApiCallError(response.status, json, `${method} ${route} -> ${response.status} ${JSON.stringify(json)}`);
  return json;
}

export async function waitForReady(base: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new Error('the API did not become ready');
}

export async function addDevice(service: RunningService, storeId: string, name: string): Promise<string> {
  const device = await call(service.api, service.adminKey, 'POST', `/v1/stores/${storeId}/devices`, { name });
  return device.key as string;
}

/** A merchant with its key, one store and one device of it. */
export async function createTenant(service: RunningService, name: string, timezone = 'UTC'): Promise<Tenant> {
  const { api, adminKey } = service;
  const merchant = await call(api, adminKey, 'POST', '/v1/merchants', { name });
  const { key: merchantKey } = await call(api, adminKey, 'POST', `/v1/merchants/${merchant.id}/keys`);
  const store = await call(api, adminKey, 'POST', '/v1/stores', { merchantId: merchant.id, name: `${name} store`, timezone });
  const deviceKey = await addDevice(service, store.id as string, `${name} robot`);
  return { merchantId: merchant.id as string, storeId: store.id as string, merchantKey: merchantKey as string, deviceKey };
}

export type Upload = { name: string; bytes: Buffer; capturedAt?: string };

/**
 * Uploads the images in requests of `batchSize` and waits until every capture is done or failed.
 * Returns each request's latency, and per image (in the order given) its capture id, or the code it
 * was refused with at intake.
 */
export async function uploadAndWait(base: string, deviceKey: string, images: Upload[], batchSize: number) {
  const latencies: number[] = [];
  const batchIds: string[] = [];
  const outcomes: ({ captureId: string } | { rejected: string })[] = [];
  for (let i = 0; i < images.length; i += batchSize) {
    const form = new FormData();
    const chunk = images.slice(i, i + batchSize);
    if (chunk.every((image) => image.capturedAt)) for (const image of chunk) form.append('capturedAt', image.capturedAt!);
    for (const image of chunk) form.append('images', new Blob([new Uint8Array(image.bytes)]), image.name);
    const started = performance.now();
    const response = await call(base, deviceKey, 'POST', '/v1/captures', form);
    latencies.push(performance.now() - started);
    batchIds.push(response.batchId as string);
    for (const capture of response.captures as { id: string; index: number }[]) outcomes[i + capture.index] = { captureId: capture.id };
    for (const refusal of response.rejected as { index: number; error: { code: string } }[]) outcomes[i + refusal.index] = { rejected: refusal.error.code };
  }
  let failed = 0;
  for (const batchId of batchIds) {
    for (;;) {
      const batch = await call(base, deviceKey, 'GET', `/v1/batches/${batchId}`);
      if (batch.status === 'done') {
        failed += batch.failed as number;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return { latencies, failed, outcomes };
}
