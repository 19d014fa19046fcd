/**
 * The service a chaos run attacks: started as `npm start` starts it (scripts/service-harness.ts) on a
 * throwaway database and data folder, with a redis-server of its own and its own local Chroma, each
 * on a free port, and one merchant and store to upload to. Its blobs are on local disk, or with
 * `blobs: 's3'` in an S3 test server of its own (scripts/s3-server.ts) that the faults can stop.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { connectDatabase } from '../../src/storage/db.js';
import type { RestartPolicy } from '../../src/supervisor.js';
import { addDevice, createTenant, prepareService, startService, waitForReady, type RunningService, type ServiceCode, type Tenant } from '../service-harness.js';
import { startS3ServerProcess, type S3ServerProcess } from '../s3-server.js';
import type { ChaosTarget, ObjectStore } from './faults.js';
import { startPrivateRedis } from './private-redis.js';
import { freePort } from '../free-port.js';

export type ChaosEnvironment = {
  service: RunningService;
  tenant: Tenant;
  target: ChaosTarget;
  /** A new device of the store: a fresh batch whose photos are new captures. */
  newDevice(name: string): Promise<string>;
  /** Waits until /readyz answers 200 again (between scenarios). */
  ready(timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
};

export type BlobKind = 'disk' | 's3';

export type ChaosOptions = { code: ServiceCode; blobs?: BlobKind; env?: NodeJS.ProcessEnv; restartPolicy?: RestartPolicy };

/** The run's S3 test server: what the faults do to it, the service's settings for it, and its end. */
type RunObjectStore = ObjectStore & { env: Record<string, string>; stop(): Promise<void> };

/**
 * An S3 test server in a child process that can be stopped and started again on the same port and
 * folder (the objects kept), or paused.
 */
async function startObjectStore(): Promise<RunObjectStore> {
  const options = { port: await freePort(), directory: await fs.mkdtemp(path.join(os.tmpdir(), 'faceperks-chaos-s3-')) };
  let server: S3ServerProcess | undefined = await startS3ServerProcess(options);
  return {
    env: server.env,
    pid: () => server?.pid,
    async down() {
      await server?.stop();
      server = undefined;
    },
    async up() {
      server ??= await startS3ServerProcess(options);
    },
    async stop() {
      await server?.stop();
      await fs.rm(options.directory, { recursive: true, force: true });
    },
  };
}

export async function startChaosEnvironment(options: ChaosOptions): Promise<ChaosEnvironment> {
  const redis = await startPrivateRedis(await freePort());
  let objectStore: RunObjectStore | undefined;
  let service: RunningService | undefined;
  let db: Knex | undefined;
  const stop = async () => {
    await db?.destroy();
    await service?.stop();
    await objectStore?.stop();
    await redis.stop();
  };
  try {
    if (options.blobs === 's3') objectStore = await startObjectStore();
    const setup = prepareService('chaos', {
      REDIS_URL: redis.url,
      PORT: String(await freePort()),
      CHROMA_PORT: String(await freePort()),
      ...objectStore?.env,
      ...options.env,
    });
    service = await startService(setup, { code: options.code, restartPolicy: options.restartPolicy });
    // One connection: the one that lists and kills the service's connections is never among them.
    db = connectDatabase(service.config, { min: 0, max: 1 });
    const tenant = await createTenant(service, 'Chaos');
    const running = service;
    return {
      service,
      tenant,
      target: { processes: service.processes, redis, config: service.config, db, objectStore },
      newDevice: (name) => addDevice(running, tenant.storeId, name),
      ready: (timeoutMs) => waitForReady(running.api, timeoutMs),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
