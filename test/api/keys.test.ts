/** Issue 14 item 9: keys listed without secrets, labelled, expiring; devices removed; admin keys rotated without a restart. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../pipeline/support.js';
import { makeImage, seedTenant, startTestApi, upload, type TestApi } from './support.js';

let t: TestApi;
beforeAll(async () => {
  t = await startTestApi();
});
afterAll(async () => {
  await t?.close();
});

describe('keys', () => {
  it('lists a merchant its own and its devices’ keys, newest first and paged, never a secret; admin sees every merchant’s', async () => {
    const a = await seedTenant(t, 'Keys A');
    const b = await seedTenant(t, 'Keys B');
    const labelled = await t.call('POST', `/v1/devices/${a.deviceId}/keys`, { key: a.merchantKey, json: { label: 'robot-1 spare' } });
    expect(labelled.status).toBe(201);

    const own = await t.call('GET', '/v1/keys', { key: a.merchantKey });
    expect(own.status).toBe(200);
    expect(own.body.items.map((k: { role: string }) => k.role)).toEqual(['device', 'device', 'merchant']);
    expect(own.body.items[0]).toEqual({
      id: labelled.body.id,
      role: 'device',
      merchantId: a.merchantId,
      deviceId: a.deviceId,
      label: 'robot-1 spare',
      createdAt: expect.any(String),
      expiresAt: null,
      lastUsedAt: null,
      revokedAt: null,
    });
    expect(JSON.stringify(own.body)).not.toMatch(/fpk_|hash/);
    expect((await t.call('GET', `/v1/keys?merchantId=${b.merchantId}`, { key: a.merchantKey })).status).toBe(404);

    const first = await t.call('GET', '/v1/keys?limit=2', { key: a.merchantKey });
    const second = await t.call('GET', `/v1/keys?limit=2&cursor=${first.body.nextCursor}`, { key: a.merchantKey });
    expect([...first.body.items, ...second.body.items].map((k: { id: string }) => k.id)).toEqual(own.body.items.map((k: { id: string }) => k.id));

    const forAdmin = await t.call('GET', `/v1/keys?merchantId=${b.merchantId}`, { key: t.adminKey });
    expect(forAdmin.body.items.every((k: { merchantId: string }) => k.merchantId === b.merchantId)).toBe(true);
    expect(forAdmin.body.items).toHaveLength(2);
    expect((await t.call('GET', '/v1/keys', { key: a.deviceKey })).status).toBe(403);

    await upload(t, a.deviceKey, [{ name: 'images', file: await makeImage() }]);
    const used = await waitFor(async () => {
      const keys = await t.call('GET', '/v1/keys', { key: a.merchantKey });
      return keys.body.items.find((k: { deviceId: string; label: string | null; lastUsedAt: string | null }) => k.label === null && k.deviceId === a.deviceId && k.lastUsedAt);
    }, 5000, 'lastUsedAt');
    expect(Date.parse(used.lastUsedAt)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('refuses a key after its expiry, and an expiry in the past at creation', async () => {
    const a = await seedTenant(t, 'Keys Expiry');
    const past = await t.call('POST', `/v1/merchants/${a.merchantId}/keys`, { key: t.adminKey, json: { expiresAt: '2020-01-01T00:00:00Z' } });
    expect([past.status, past.body.error.code]).toEqual([400, 'validation_error']);
    const expiresAt = new Date(Date.now() + 3000).toISOString();
    const brief = await t.call('POST', `/v1/devices/${a.deviceId}/keys`, { key: a.merchantKey, json: { expiresAt } });
    expect((await t.call('GET', `/v1/stores/${a.storeId}`, { key: brief.body.key })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, Date.parse(expiresAt) - Date.now() + 100));
    expect((await t.call('GET', `/v1/stores/${a.storeId}`, { key: brief.body.key })).status).toBe(401);
  });

  it('removes a device: another merchant gets 404, its keys stop working, its captures stay', async () => {
    const a = await seedTenant(t, 'Keys Device');
    const b = await seedTenant(t, 'Keys Other');
    const sent = await upload(t, a.deviceKey, [{ name: 'images', file: await makeImage() }]);
    expect(sent.status).toBe(202);
    expect((await t.call('DELETE', `/v1/devices/${a.deviceId}`, { key: b.merchantKey })).status).toBe(404);
    expect((await t.call('DELETE', `/v1/devices/${a.deviceId}`, { key: a.merchantKey })).status).toBe(204);
    expect((await t.call('GET', `/v1/stores/${a.storeId}`, { key: a.deviceKey })).status).toBe(401);
    expect((await t.call('GET', `/v1/stores/${a.storeId}/devices`, { key: a.merchantKey })).body.devices).toEqual([]);
    expect((await t.call('DELETE', `/v1/devices/${a.deviceId}`, { key: a.merchantKey })).status).toBe(404);
    expect((await t.call('GET', `/v1/captures/${sent.body.captures[0].id}`, { key: a.merchantKey })).status).toBe(200);
  });

  it('rotates the admin key without a restart: a new admin key, then the old one revoked', async () => {
    const before = await t.call('GET', '/v1/keys', { key: t.adminKey });
    const oldId = before.body.items.find((k: { role: string }) => k.role === 'admin').id;
    const rotated = await t.call('POST', '/v1/admin-keys', { key: t.adminKey, json: { label: 'ops 2026-12' } });
    expect([rotated.status, rotated.body.role]).toEqual([201, 'admin']);
    expect((await t.call('DELETE', `/v1/keys/${oldId}`, { key: rotated.body.key })).status).toBe(204);
    expect((await t.call('POST', '/v1/merchants', { key: t.adminKey, json: { name: 'Old key' } })).status).toBe(401);
    expect((await t.call('POST', '/v1/merchants', { key: rotated.body.key, json: { name: 'New key' } })).status).toBe(201);
    const merchant = await seedTenant({ ...t, adminKey: rotated.body.key }, 'Keys After');
    expect((await t.call('POST', '/v1/admin-keys', { key: merchant.merchantKey })).status).toBe(403);
  });
});
