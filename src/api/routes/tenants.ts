/** Merchants, keys, stores and devices. */
import type Router from '@koa/router';
import { z } from 'zod';
import type { Device } from '../../../models/Device.js';
import type { Merchant } from '../../../models/Merchant.js';
import type { Store } from '../../../models/Store.js';
import { updateKeepFaceCrops } from '../../services/face-crops.js';
import { createApiKey, listApiKeys, revokeApiKey, type KeyOptions } from '../../storage/repositories/apiKeys.js';
import { createDevice, createMerchant, createStore, findDevice, findMerchant, findStore, listDevices, listStores, removeDevice } from '../../storage/repositories/tenants.js';
import type { RouteDeps } from '../app.js';
import { actingMerchant, authorize } from '../auth.js';
import { ApiError, notFound } from '../errors.js';
import { idParams, isoInstant, nameField, parse, timezoneField, uuid } from '../validation.js';

const merchantView = (m: Merchant) => ({ id: m.id, name: m.name, keepFaceCrops: m.keepFaceCrops, createdAt: m.createdAt.toISOString() });
const storeView = (s: Store) => ({ id: s.id, merchantId: s.merchantId, name: s.name, timezone: s.timezone, createdAt: s.createdAt.toISOString() });
const deviceView = (d: Device) => ({ id: d.id, storeId: d.storeId, name: d.name, createdAt: d.createdAt.toISOString() });

const createMerchantBody = z.strictObject({ name: nameField });
const updateMerchantBody = z.strictObject({ keepFaceCrops: z.boolean() });
const createStoreBody = z.strictObject({ merchantId: uuid.optional(), name: nameField, timezone: timezoneField });
const createDeviceBody = z.strictObject({ name: nameField });
const listStoresQuery = z.strictObject({ merchantId: uuid.optional() });
const newKeyBody = z.strictObject({ label: nameField.pipe(z.string().max(100)).optional(), expiresAt: isoInstant.optional() });
const listKeysQuery = z.strictObject({ merchantId: uuid.optional(), cursor: uuid.optional(), limit: z.coerce.number().int().min(1).max(200).default(50) });

/** A new key's optional label and expiry (in the future). */
function keyOptions(body: unknown): KeyOptions {
  const { label, expiresAt } = parse(newKeyBody, body ?? {}, 'body');
  if (expiresAt !== undefined && new Date(expiresAt) <= new Date()) throw new ApiError(400, 'validation_error', 'invalid body: expiresAt: must be in the future');
  return { label, expiresAt: expiresAt === undefined ? undefined : new Date(expiresAt) };
}

export function tenantRoutes(router: Router, { db, blobs }: RouteDeps): void {
  router.post('/v1/merchants', async (ctx) => {
    authorize(ctx, 'admin');
    const body = parse(createMerchantBody, ctx.request.body, 'body');
    const merchant = await createMerchant(db, body.name);
    ctx.status = 201;
    ctx.set('Location', `/v1/merchants/${merchant.id}`);
    ctx.body = merchantView(merchant);
  });

  router.get('/v1/merchants/:id', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(idParams, ctx.params, 'path');
    const merchant = await findMerchant(db, id, principal);
    if (!merchant) throw notFound('merchant');
    ctx.body = merchantView(merchant);
  });

  /** Settings of the merchant: whether face crops are kept (turning it off deletes them). */
  router.patch('/v1/merchants/:id', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(idParams, ctx.params, 'path');
    const body = parse(updateMerchantBody, ctx.request.body, 'body');
    if (!(await findMerchant(db, id, principal))) throw notFound('merchant');
    await updateKeepFaceCrops({ db, blobs }, id, body.keepFaceCrops);
    ctx.body = merchantView((await findMerchant(db, id, principal))!);
  });

  /** A new merchant key, shown once. */
  router.post('/v1/merchants/:id/keys', async (ctx) => {
    const principal = authorize(ctx, 'admin');
    const { id } = parse(idParams, ctx.params, 'path');
    const options = keyOptions(ctx.request.body);
    if (!(await findMerchant(db, id, principal))) throw notFound('merchant');
    const created = await createApiKey(db, { role: 'merchant', merchantId: id }, options);
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { id: created.id, key: created.key, role: 'merchant', merchantId: id };
  });

  /** Another admin key, shown once: rotation without a restart (create, switch, then DELETE /v1/keys/:old). */
  router.post('/v1/admin-keys', async (ctx) => {
    authorize(ctx, 'admin');
    const created = await createApiKey(db, { role: 'admin' }, keyOptions(ctx.request.body));
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { id: created.id, key: created.key, role: 'admin' };
  });

  /** Keys the caller manages, newest first, never their secrets: admin all (or ?merchantId=), a merchant its own and its devices'. */
  router.get('/v1/keys', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const query = parse(listKeysQuery, ctx.query, 'query');
    const merchantId = principal.role === 'merchant' ? actingMerchant(principal, query.merchantId) : query.merchantId;
    const items = await listApiKeys(db, { merchantId }, { limit: query.limit, before: query.cursor });
    ctx.body = { items, nextCursor: items.length === query.limit ? items[items.length - 1].id : null };
  });

  /** Revokes a key: admin any; a merchant its own merchant and device keys. */
  router.delete('/v1/keys/:id', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(idParams, ctx.params, 'path');
    if (!(await revokeApiKey(db, id, principal))) throw notFound('key');
    ctx.status = 204;
  });

  router.post('/v1/stores', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const body = parse(createStoreBody, ctx.request.body, 'body');
    const merchantId = actingMerchant(principal, body.merchantId);
    if (!(await findMerchant(db, merchantId, principal))) throw notFound('merchant');
    const store = await createStore(db, { merchantId, name: body.name, timezone: body.timezone });
    ctx.status = 201;
    ctx.set('Location', `/v1/stores/${store.id}`);
    ctx.body = storeView(store);
  });

  router.get('/v1/stores', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const query = parse(listStoresQuery, ctx.query, 'query');
    const merchantId = actingMerchant(principal, query.merchantId);
    ctx.body = { stores: (await listStores(db, merchantId)).map(storeView) };
  });

  router.get('/v1/stores/:id', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant', 'device');
    const { id } = parse(idParams, ctx.params, 'path');
    const store = await findStore(db, id, principal);
    if (!store) throw notFound('store');
    ctx.body = storeView(store);
  });

  /** A new device of the store and its key, shown once. */
  router.post('/v1/stores/:id/devices', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(idParams, ctx.params, 'path');
    const body = parse(createDeviceBody, ctx.request.body, 'body');
    const store = await findStore(db, id, principal);
    if (!store) throw notFound('store');
    const { device, key, keyId } = await createDevice(db, store, body.name);
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Location', `/v1/devices/${device.id}`);
    ctx.body = { ...deviceView(device), key, keyId };
  });

  router.get('/v1/stores/:id/devices', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(idParams, ctx.params, 'path');
    const store = await findStore(db, id, principal);
    if (!store) throw notFound('store');
    ctx.body = { devices: (await listDevices(db, store.id)).map(deviceView) };
  });

  /** Removes a device: its keys stop working at once; what it uploaded stays. */
  router.delete('/v1/devices/:id', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(idParams, ctx.params, 'path');
    const device = await findDevice(db, id, principal);
    if (!device) throw notFound('device');
    await removeDevice(db, device.id);
    ctx.status = 204;
  });

  /** Another key for a device (rotation: create, deploy, then DELETE /v1/keys/:old). */
  router.post('/v1/devices/:id/keys', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(idParams, ctx.params, 'path');
    const device = await findDevice(db, id, principal);
    if (!device) throw notFound('device');
    const created = await createApiKey(db, { role: 'device', merchantId: device.merchantId, deviceId: device.id }, keyOptions(ctx.request.body));
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { id: created.id, key: created.key, role: 'device', deviceId: device.id };
  });
}
