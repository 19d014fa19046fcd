/** Merchants, their stores and devices, always looked up within the caller's tenancy. */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { Device } from '../../../models/Device.js';
import { Merchant } from '../../../models/Merchant.js';
import { Store } from '../../../models/Store.js';
import { createApiKey } from './apiKeys.js';
import { merchantScope, type Principal } from './principal.js';

export async function createMerchant(db: Knex, name: string): Promise<Merchant> {
  const id = randomUUID();
  await Merchant.query(db).insert({ id, name });
  return Merchant.query(db).findById(id).throwIfNotFound();
}

/** The merchant if the principal may see it: admin any, a merchant or device key only its own. */
export async function findMerchant(db: Knex, id: string, principal: Principal): Promise<Merchant | undefined> {
  const scope = merchantScope(principal);
  if (scope !== null && scope !== id) return undefined;
  return Merchant.query(db).findById(id);
}

export async function createStore(db: Knex, input: { merchantId: string; name: string; timezone: string }): Promise<Store> {
  const id = randomUUID();
  await Store.query(db).insert({ id, ...input });
  return Store.query(db).findById(id).throwIfNotFound();
}

export async function findStore(db: Knex, id: string, principal: Principal): Promise<Store | undefined> {
  const query = Store.query(db).findById(id);
  const scope = merchantScope(principal);
  if (scope !== null) query.where('merchant_id', scope);
  if (principal.role === 'device') query.where('id', principal.storeId);
  return query;
}

export async function listStores(db: Knex, merchantId: string): Promise<Store[]> {
  return Store.query(db).where('merchant_id', merchantId).orderBy('created_at').orderBy('id');
}

/** A device and its key, created together: a device without a key could never upload. */
export async function createDevice(db: Knex, store: Store, name: string): Promise<{ device: Device; key: string; keyId: string }> {
  return db.transaction(async (trx) => {
    const id = randomUUID();
    await Device.query(trx).insert({ id, storeId: store.id, name });
    const created = await createApiKey(trx, { role: 'device', merchantId: store.merchantId, deviceId: id });
    const device = await Device.query(trx).findById(id).throwIfNotFound();
    return { device, key: created.key, keyId: created.id };
  });
}

export async function listDevices(db: Knex, storeId: string): Promise<Device[]> {
  return Device.query(db).where('store_id', storeId).whereNull('deleted_at').orderBy('created_at').orderBy('id');
}

export async function findDevice(db: Knex, id: string, principal: Principal): Promise<(Device & { merchantId: string }) | undefined> {
  const query = db('devices as d')
    .join('stores as s', 's.id', 'd.store_id')
    .where('d.id', id)
    .whereNull('d.deleted_at')
    .first('d.id', 'd.store_id', 'd.name', 'd.created_at', 's.merchant_id');
  const scope = merchantScope(principal);
  if (scope !== null) query.where('s.merchant_id', scope);
  if (principal.role === 'device') query.where('d.id', principal.deviceId);
  const row = await query;
  if (!row) return undefined;
  return Object.assign(Device.fromDatabaseJson(row), { merchantId: row.merchant_id as string });
}

/** Removes a device: its keys are revoked and it leaves the store's list; its captures and analytics stay. */
export async function removeDevice(db: Knex, deviceId: string): Promise<void> {
  await db.transaction(async (trx) => {
    await trx('devices').where('id', deviceId).whereNull('deleted_at').update({ deleted_at: trx.raw('NOW(3)') });
    await trx('api_keys').where('device_id', deviceId).whereNull('revoked_at').update({ revoked_at: trx.raw('NOW(3)') });
  });
}
