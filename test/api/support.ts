/** Starts the API on an ephemeral port against a fresh test database and a private queue prefix. */
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { multipart, type Part } from '../../scripts/multipart.js';
import { createApp, type AppDeps } from '../../src/api/app.js';
import { listen, type RunningApi } from '../../src/api/main.js';
import { createQueues, type Queues } from '../../src/queue/queues.js';
import { openBlobStore, type BlobStore } from '../../src/storage/blobs.js';
import { bootstrapAdminKey } from '../../src/storage/repositories/apiKeys.js';
import { createTestEnvironment, type TestEnvironment } from '../support/services.js';

export { multipart, type Part };

export type TestApi = {
  env: TestEnvironment;
  queues: Queues;
  blobs: BlobStore;
  adminKey: string;
  url: string;
  api: RunningApi;
  call(method: string, path: string, options?: { key?: string; json?: unknown; body?: BodyInit; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
};

/** JSON (or raw) calls to the API at `url`, with an optional bearer key; the body parsed when it is JSON. */
export function apiCaller(url: string): TestApi['call'] {
  return async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.key) headers.authorization = `Bearer ${opts.key}`;
    let body = opts.body;
    if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    }
    const response = await fetch(url + path, { method, headers, body });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: response.status, body: parsed as any, headers: response.headers };
  };
}

export async function startTestApi(
  options: { env?: Record<string, string>; deps?: Partial<AppDeps> } = {},
): Promise<TestApi> {
  const env = await createTestEnvironment(options.env);
  const queues = createQueues(env.config);
  const blobs = openBlobStore(env.config);
  const boot = await bootstrapAdminKey(env.db);
  if (boot.source !== 'generated') throw new Error('expected a generated admin key');
  const api = await listen({ config: env.config, db: env.db, blobs, queues, ...options.deps }, 0, '127.0.0.1');
  const url = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  const call = apiCaller(url);
  return {
    env,
    queues,
    blobs,
    adminKey: boot.key,
    url,
    api,
    call,
    async close() {
      await api.close();
      for (const name of ['vision', 'interactive'] as const) await queues.queue(name).obliterate({ force: true }).catch(() => undefined);
      await queues.close();
      await env.cleanup();
    },
  };
}

export { createApp };

/** A merchant, a store, a device and their keys. */
export async function seedTenant(t: TestApi, name = 'Acme') {
  const merchant = await t.call('POST', '/v1/merchants', { key: t.adminKey, json: { name } });
  const merchantKey = await t.call('POST', `/v1/merchants/${merchant.body.id}/keys`, { key: t.adminKey });
  const store = await t.call('POST', '/v1/stores', { key: merchantKey.body.key, json: { name: `${name} Main St`, timezone: 'Europe/Paris' } });
  const device = await t.call('POST', `/v1/stores/${store.body.id}/devices`, { key: merchantKey.body.key, json: { name: 'robot-1' } });
  for (const r of [merchant, merchantKey, store, device]) if (r.status !== 201) throw new Error(`seed failed: ${JSON.stringify(r.body)}`);
  return {
    merchantId: merchant.body.id as string,
    merchantKey: merchantKey.body.key as string,
    storeId: store.body.id as string,
    deviceId: device.body.id as string,
    deviceKey: device.body.key as string,
  };
}

let seed = 1;
/** A small JPEG (or PNG) whose bytes differ on every call. */
export async function makeImage(format: 'jpeg' | 'png' = 'jpeg', size = 64, options: { exif?: string; noise?: boolean } = {}): Promise<Buffer> {
  const n = seed++;
  let image = options.noise
    ? sharp(Buffer.from(Array.from({ length: size * size * 3 }, (_, i) => ((i + n) * 2654435761) >>> 24)), { raw: { width: size, height: size, channels: 3 } })
    : sharp({ create: { width: size, height: size, channels: 3, background: { r: n % 256, g: (n * 7) % 256, b: (n * 13) % 256 } } });
  if (options.exif) image = image.withExif({ IFD2: { DateTimeOriginal: options.exif } });
  return format === 'jpeg' ? image.jpeg({ quality: 90 }).toBuffer() : image.png().toBuffer();
}

export async function upload(t: TestApi, key: string, parts: Part[], path = '/v1/captures') {
  const { body, contentType } = multipart(parts);
  return t.call('POST', path, { key, body: body as unknown as BodyInit, headers: { 'content-type': contentType } });
}
