/**
 * Service-wide settings in MySQL (`service_settings`). The active model pack lives here once a
 * reembed has switched it; until then MODEL_PACK from the environment decides.
 */
import type { Knex } from 'knex';
import { PACK_NAMES, type Config } from '../config.js';

export type PackName = (typeof PACK_NAMES)[number];

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
