import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { ApiKey, type ApiKeyRole } from '../../../models/ApiKey.js';
import type { Principal } from './principal.js';

const KEY_PREFIX = 'fpk_';

/** A new random key: 32 bytes of entropy, base64url, with a recognisable prefix for secret scanners. */
export function generateApiKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export type NewKey = { id: string; key: string; role: ApiKeyRole };

export type KeyGrant = { role: 'admin' } | { role: 'merchant'; merchantId: string } | { role: 'device'; merchantId: string; deviceId: string };
export type KeyOptions = { label?: string; expiresAt?: Date };

/** Stores the hash of a new key; the key itself is returned once and never stored. */
export async function createApiKey(db: Knex, grant: KeyGrant, options: KeyOptions = {}, key = generateApiKey()): Promise<NewKey> {
  const id = randomUUID();
  await ApiKey.query(db).insert({
    id,
    keyHash: hashApiKey(key),
    role: grant.role,
    merchantId: grant.role === 'admin' ? null : grant.merchantId,
    deviceId: grant.role === 'device' ? grant.deviceId : null,
    label: options.label ?? null,
    expiresAt: options.expiresAt ?? null,
  });
  return { id, key, role: grant.role };
}

const LAST_USED_RESOLUTION_S = 60;

/** Notes that a key was used; the caller asks only when the stored time is a minute old. */
function touchKey(db: Knex, keyId: string): void {
  db('api_keys')
    .where('id', keyId)
    .update({ last_used_at: db.raw('NOW(3)') })
    .catch(() => undefined);
}

/** The principal a presented key stands for, or undefined when it is unknown or revoked. */
export async function findPrincipalByKey(db: Knex, key: string): Promise<Principal | undefined> {
  const row = await db('api_keys as k')
    .leftJoin('devices as d', 'd.id', 'k.device_id')
    .leftJoin('stores as s', 's.id', 'd.store_id')
    .where('k.key_hash', hashApiKey(key))
    .whereNull('k.revoked_at')
    .where((q) => q.whereNull('k.expires_at').orWhereRaw('k.expires_at > NOW(3)'))
    .whereNull('d.deleted_at')
    .first(
      'k.id',
      'k.role',
      'k.merchant_id',
      'k.device_id',
      'd.store_id',
      's.timezone as store_timezone',
      db.raw('(k.last_used_at IS NULL OR k.last_used_at < NOW(3) - INTERVAL ? SECOND) AS use_unrecorded', [LAST_USED_RESOLUTION_S]),
    );
  if (!row) return undefined;
  // Authentication writes at most once a minute per key, not on every request.
  if (row.use_unrecorded) touchKey(db, row.id);
  switch (row.role as ApiKeyRole) {
    case 'admin':
      return { role: 'admin', keyId: row.id };
    case 'merchant':
      return row.merchant_id ? { role: 'merchant', keyId: row.id, merchantId: row.merchant_id } : undefined;
    case 'device':
      return row.merchant_id && row.device_id && row.store_id
        ? { role: 'device', keyId: row.id, merchantId: row.merchant_id, deviceId: row.device_id, storeId: row.store_id, storeTimeZone: row.store_timezone }
        : undefined;
    default:
      return undefined;
  }
}

/**
 * Revokes a key the principal may manage: admin any key; a merchant its own merchant's merchant
 * and device keys. Returns false when the key is unknown to the caller (404).
 */
export async function revokeApiKey(db: Knex, keyId: string, principal: Principal): Promise<boolean> {
  const query = ApiKey.query(db).patch({ revokedAt: new Date() }).where('id', keyId).whereNull('revoked_at');
  if (principal.role !== 'admin') query.where('merchant_id', principal.merchantId);
  const changed = await query;
  if (changed > 0) return true;
  // Already revoked keys count as found (revocation is idempotent) when they are in scope.
  const existing = ApiKey.query(db).findById(keyId);
  if (principal.role !== 'admin') existing.where('merchant_id', principal.merchantId);
  return (await existing) !== undefined;
}

export type KeyView = {
  id: string;
  role: ApiKeyRole;
  merchantId: string | null;
  deviceId: string | null;
  label: string | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
};

const iso = (date: Date | null) => (date ? date.toISOString() : null);

/**
 * Keys the principal may manage, newest first, never their secrets: admin every key (or one
 * merchant's), a merchant its merchant and device keys. `before`: the last id of the previous page.
 */
export async function listApiKeys(db: Knex, scope: { merchantId?: string }, page: { limit: number; before?: string }): Promise<KeyView[]> {
  const query = ApiKey.query(db).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(page.limit);
  if (scope.merchantId) query.where('merchant_id', scope.merchantId);
  if (page.before) {
    const last = ApiKey.query(db).findById(page.before).select('created_at');
    query.where((q) => q.where('created_at', '<', last).orWhere((q2) => q2.where('created_at', '=', last).where('id', '<', page.before!)));
  }
  return (await query).map((key) => ({
    id: key.id,
    role: key.role,
    merchantId: key.merchantId,
    deviceId: key.deviceId,
    label: key.label,
    createdAt: key.createdAt.toISOString(),
    expiresAt: iso(key.expiresAt),
    lastUsedAt: iso(key.lastUsedAt),
    revokedAt: iso(key.revokedAt),
  }));
}

export const MIN_ADMIN_KEY_LENGTH = 32;

/**
 * Values this repository and its docs have shipped in place of an admin key: whoever read them
 * would be admin of a deployment that kept one. Checked as literals (a compiled build has no docs to
 * scan at start); test/api/security.test.ts fails when a doc shows a value these rules accept.
 */
const PUBLISHED_ADMIN_KEYS = ['change-me-to-a-long-random-admin-key', 'change-me-to-a-long-random-secret'];
const PLACEHOLDER = /change-?me|replace-?me|example|placeholder|your[-_ ]?(admin[-_ ]?)?key/i;

/** Why `key` must not be the admin key, or null when it may. */
export function adminKeyProblem(key: string): string | null {
  if (key.length < MIN_ADMIN_KEY_LENGTH) return `FACEPERKS_ADMIN_KEY must be at least ${MIN_ADMIN_KEY_LENGTH} characters (e.g. openssl rand -hex 32)`;
  if (PUBLISHED_ADMIN_KEYS.includes(key.toLowerCase()) || PLACEHOLDER.test(key)) {
    return 'FACEPERKS_ADMIN_KEY is an example value published with FacePerks; set a random one (e.g. openssl rand -hex 32)';
  }
  return null;
}

export class UnsafeAdminKeyError extends Error {}

export type AdminBootstrap =
  /** FACEPERKS_ADMIN_KEY is the admin key (other admin keys are revoked). */
  | { source: 'configured' }
  /** No key configured and an admin key already exists: nothing to do. */
  | { source: 'existing' }
  /** No key configured and none stored: `key` was generated and must be shown once. */
  | { source: 'generated'; key: string };

/**
 * Makes sure an admin key exists. With `configuredKey` (FACEPERKS_ADMIN_KEY) that key becomes the
 * only admin key (so changing the variable rotates it); a short or published one is refused. Without it, a key is generated at the first
 * start only, and returned so the caller prints it once; only its hash is stored. A MySQL named lock
 * keeps two processes starting together from generating two keys.
 */
export async function bootstrapAdminKey(db: Knex, configuredKey?: string): Promise<AdminBootstrap> {
  const problem = configuredKey === undefined ? null : adminKeyProblem(configuredKey);
  if (problem) throw new UnsafeAdminKeyError(problem);
  const conn = await db.client.acquireConnection();
  try {
    const [[{ name }]] = (await db.raw('SELECT DATABASE() AS name').connection(conn)) as [[{ name: string | null }]];
    const lockName = `faceperks_admin_${name ?? ''}`.slice(0, 64);
    const [[{ got }]] = (await db.raw('SELECT GET_LOCK(?, 30) AS got', [lockName]).connection(conn)) as [[{ got: number }]];
    if (got !== 1) throw new Error('could not take the admin bootstrap lock within 30s');
    try {
      if (configuredKey) {
        const hash = hashApiKey(configuredKey);
        await db.transaction(async (trx) => {
          await trx('api_keys').where({ role: 'admin' }).whereNot('key_hash', hash).whereNull('revoked_at').update({ revoked_at: new Date() });
          const existing = await trx('api_keys').where('key_hash', hash).first('id', 'role');
          if (!existing) {
            await createApiKey(trx, { role: 'admin' }, {}, configuredKey);
          } else if (existing.role !== 'admin') {
            throw new Error('FACEPERKS_ADMIN_KEY is already in use as a non-admin key; choose another value');
          } else {
            await trx('api_keys').where('id', existing.id).update({ revoked_at: null });
          }
        });
        return { source: 'configured' };
      }
      const active = await db('api_keys').where({ role: 'admin' }).whereNull('revoked_at').first('id');
      if (active) return { source: 'existing' };
      const created = await createApiKey(db, { role: 'admin' });
      return { source: 'generated', key: created.key };
    } finally {
      await db.raw('SELECT RELEASE_LOCK(?)', [lockName]).connection(conn);
    }
  } finally {
    await db.client.releaseConnection(conn);
  }
}
