/**
 * The service a chaos run attacks: started as `npm start` starts it (scripts/service-harness.ts) on a
 * throwaway database and data folder, with a redis-server of its own and its own local Chroma, each
 * on a free port, and one merchant and store to upload to.
 */
import type { Knex } from 'knex';
import { connectDatabase } from '../../src/storage/db.js';
import type { RestartPolicy } from '../../src/supervisor.js';
import { addDevice, createTenant, prepareService, startService, waitForReady, type RunningService, type ServiceCode, type Tenant } from '../service-harness.js';
import type { ChaosTarget } from './faults.js';
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

export type ChaosOptions = { code: ServiceCode; env?: NodeJS.ProcessEnv; restartPolicy?: RestartPolicy };

export async function startChaosEnvironment(options: ChaosOptions): Promise<ChaosEnvironment> {
  const redis = await startPrivateRedis(await freePort());
  let service: RunningService | undefined;
  let db: Knex | undefined;
  const stop = async () => {
    await db?.destroy();
    await service?.stop();
    await redis.stop();
  };
  try {
    const setup = prepareService('chaos', {
      REDIS_URL: redis.url,
      PORT: String(await freePort()),
      CHROMA_PORT: String(await freePort()),
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
      target: { processes: service.processes, redis, config: service.config, db },
      newDevice: (name) => addDevice(running, tenant.storeId, name),
      ready: (timeoutMs) => waitForReady(running.api, timeoutMs),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
