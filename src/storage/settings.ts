/**
 * Service-wide settings in MySQL (`service_settings`). The active model pack lives here once a
 * reembed has switched it; until then MODEL_PACK from the environment decides.
 */
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { PACK_NAMES, type Config } from '../config.js';

export type { PackName } from '../vision/types.js';
import type { PackName } from '../vision/types.js';

const ACTIVE_PACK = 'active_pack';

function isPackName(value: unknown): value is PackName {
  return typeof value === 'string' && (PACK_NAMES as readonly string[]).includes(value);
}

/**
 * The pack whose embedding space recognition uses now: the stored setting when present and known,
 * else `fallback` (config MODEL_PACK). A database not migrated yet (no table) also falls back.
 */
export async function activePack(db: Knex, fallback: Config['MODEL_PACK']): Promise<PackName> {
  let row: { value: string } | undefined;
  try {
    row = await db('service_settings').where({ name: ACTIVE_PACK }).first('value');
  } catch (error) {
    if ((error as { code?: string }).code === 'ER_NO_SUCH_TABLE') return fallback;
    throw error;
  }
  return isPackName(row?.value) ? row.value : fallback;
}

export async function setActivePack(db: Knex, pack: PackName): Promise<void> {
  await db('service_settings')
    .insert({ name: ACTIVE_PACK, value: pack, updated_at: db.raw('CURRENT_TIMESTAMP(3)') })
    .onConflict('name')
    .merge(['value', 'updated_at']);
}

const DEPLOYMENT_ID = 'deployment_id';

/** This deployment's id, created at first start: every process on the same database reads the same one. */
export async function deploymentId(db: Knex): Promise<string> {
  await db('service_settings')
    .insert({ name: DEPLOYMENT_ID, value: randomBytes(6).toString('hex'), updated_at: db.raw('CURRENT_TIMESTAMP(3)') })
    .onConflict('name')
    .ignore();
  const row: { value: string } = await db('service_settings').where({ name: DEPLOYMENT_ID }).first('value');
  return row.value;
}

/** `config` with its queue prefix: the configured one, else one derived from the deployment id. */
export async function withQueuePrefix<C extends Pick<Config, 'QUEUE_PREFIX'>>(db: Knex, config: C): Promise<C> {
  if (config.QUEUE_PREFIX) return config;
  return { ...config, QUEUE_PREFIX: `faceperks-${await deploymentId(db)}` };
}
