import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootstrapAdminKey, hashApiKey } from '../../src/storage/repositories/apiKeys.js';
import { makeImage, seedTenant, startTestApi, upload, type TestApi } from './support.js';

let t: TestApi;
beforeAll(async () => {
  t = await startTestApi();
});
afterAll(async () => {
  await t?.close();
});

const expectError = (r: { status: number; body: any }, status: number, code?: string) => {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.body.error).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String) }));
  if (code) expect(r.body.error.code).toBe(code);
};

describe('auth', () => {
  it('answers 401 without a key, with a malformed header, or with an unknown key', async () => {
    expectError(await t.call('POST', '/v1/merchants', { json: { name: 'x' } }), 401, 'unauthorized');
    expectError(await t.call('POST', '/v1/merchants', { json: { name: 'x' }, headers: { authorization: 'Token abc' } }), 401);
    expectError(await t.call('POST', '/v1/merchants', { json: { name: 'x' }, key: 'fpk_nope' }), 401);
    const r = await t.call('GET', `/v1/captures/${randomUUID()}`);
    expectError(r, 401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('public routes answer whatever key comes along: a probe or scraper holding a stale key still works', async () => {
    for (const route of ['/healthz', '/metrics', '/v1/openapi.json']) {
      for (const headers of [{ authorization: 'Bearer fpk_revoked_long_ago' }, { authorization: 'Token abc' }]) {
        const r = await t.call('GET', route, { headers });
        expect(r.status, `${route} with ${headers.authorization}`).toBe(200);
      }
    }
    const r = await t.call('GET', `/v1/captures/${randomUUID()}`, { key: 'fpk_nope' });
    expectError(r, 401, 'unauthorized');
    expect(r.body.error.message).toMatch(/unknown or revoked/);
  });

  it('stores only the hash of keys, and the generated admin key works', async () => {
    const rows = await t.env.db('api_keys').select('key_hash', 'role');
    expect(rows).toContainEqual({ key_hash: hashApiKey(t.adminKey), role: 'admin' });
    expect(JSON.stringify(rows)).not.toContain(t.adminKey);
    expect((await bootstrapAdminKey(t.env.db)).source).toBe('existing');
  });

  it('a configured admin key replaces the generated one', async () => {
    const configured = `configured-admin-${randomUUID()}`;
    expect((await bootstrapAdminKey(t.env.db, configured)).source).toBe('configured');
    expect((await t.call('POST', '/v1/merchants', { key: configured, json: { name: 'Cfg' } })).status).toBe(201);
    expectError(await t.call('POST', '/v1/merchants', { key: t.adminKey, json: { name: 'Old' } }), 401);
    // Restore the generated key for the other tests.
    await t.env.db('api_keys').where('key_hash', hashApiKey(t.adminKey)).update({ revoked_at: null });
  });

  it('answers 403 to a known key of the wrong role', async () => {
    const a = await seedTenant(t, 'RoleCo');
    expectError(await t.call('POST', '/v1/merchants', { key: a.merchantKey, json: { name: 'x' } }), 403, 'forbidden');
    expectError(await t.call('POST', '/v1/merchants', { key: a.deviceKey, json: { name: 'x' } }), 403);
    expectError(await t.call('POST', `/v1/merchants/${a.merchantId}/keys`, { key: a.merchantKey }), 403);
    expectError(await upload(t, a.merchantKey, [{ name: 'images', file: await makeImage() }]), 403);
    expectError(await t.call('POST', '/v1/people', { key: a.deviceKey, json: { displayName: 'x' } }), 403);
  });

  it('revoked keys stop working', async () => {
    const a = await seedTenant(t, 'RevokeCo');
    const extra = await t.call('POST', `/v1/merchants/${a.merchantId}/keys`, { key: t.adminKey });
    expect((await t.call('GET', `/v1/merchants/${a.merchantId}`, { key: extra.body.key })).status).toBe(200);
    expect((await t.call('DELETE', `/v1/keys/${extra.body.id}`, { key: a.merchantKey })).status).toBe(204);
    expectError(await t.call('GET', `/v1/merchants/${a.merchantId}`, { key: extra.body.key }), 401);
  });
});

describe('tenancy', () => {
  it("answers 404 (never 403) for another merchant's resources", async () => {
    const a = await seedTenant(t, 'Alpha');
    const b = await seedTenant(t, 'Beta');
    const up = await upload(t, a.deviceKey, [{ name: 'images', file: await makeImage() }]);
    expect(up.status).toBe(202);
    const captureId = up.body.captures[0].id;
    const batchId = up.body.batchId;

    expect((await t.call('GET', `/v1/captures/${captureId}`, { key: a.merchantKey })).status).toBe(200);
    expect((await t.call('GET', `/v1/captures/${captureId}`, { key: a.deviceKey })).status).toBe(200);
    expect((await t.call('GET', `/v1/captures/${captureId}`, { key: t.adminKey })).status).toBe(200);
    expectError(await t.call('GET', `/v1/captures/${captureId}`, { key: b.merchantKey }), 404, 'not_found');
    expectError(await t.call('GET', `/v1/captures/${captureId}`, { key: b.deviceKey }), 404);
    expectError(await t.call('GET', `/v1/batches/${batchId}`, { key: b.merchantKey }), 404);
    expectError(await t.call('GET', `/v1/merchants/${a.merchantId}`, { key: b.merchantKey }), 404);
    expectError(await t.call('GET', `/v1/stores/${a.storeId}`, { key: b.merchantKey }), 404);
    expectError(await t.call('POST', `/v1/stores/${a.storeId}/devices`, { key: b.merchantKey, json: { name: 'spy' } }), 404);
    expectError(await t.call('POST', '/v1/stores', { key: b.merchantKey, json: { merchantId: a.merchantId, name: 'x', timezone: 'UTC' } }), 404);
    expectError(await t.call('POST', '/v1/people', { key: b.merchantKey, json: { merchantId: a.merchantId, displayName: 'x' } }), 404);

    const person = await t.call('POST', '/v1/people', { key: a.merchantKey, json: { displayName: 'Ann', externalId: 'ann-1' } });
    expect(person.status).toBe(201);
    expect(person.body).toMatchObject({ merchantId: a.merchantId, displayName: 'Ann', externalId: 'ann-1', points: 0, faces: [] });
    expectError(await t.call('GET', `/v1/people/${person.body.id}`, { key: b.merchantKey }), 404);
    expectError(await t.call('DELETE', `/v1/people/${person.body.id}`, { key: b.merchantKey }), 404);
    expect((await t.call('GET', `/v1/people/${person.body.id}`, { key: a.merchantKey })).status).toBe(200);

    // A device reads its own captures only, even within its merchant.
    const sibling = await t.call('POST', `/v1/stores/${a.storeId}/devices`, { key: a.merchantKey, json: { name: 'robot-2' } });
    expectError(await t.call('GET', `/v1/captures/${captureId}`, { key: sibling.body.key }), 404);
  });
});

describe('validation', () => {
  it('answers 400 with a clear message for bad bodies, params and queries', async () => {
    const a = await seedTenant(t, 'Valid');
    let r = await t.call('POST', '/v1/merchants', { key: t.adminKey, json: {} });
    expectError(r, 400, 'validation_error');
    expect(r.body.error.message).toContain('name');
    expectError(await t.call('POST', '/v1/merchants', { key: t.adminKey, json: { name: '' } }), 400);
    expectError(await t.call('POST', '/v1/merchants', { key: t.adminKey, json: { name: 'x'.repeat(201) } }), 400);
    expectError(await t.call('POST', '/v1/merchants', { key: t.adminKey, json: { name: 'x', extra: 1 } }), 400);
    r = await t.call('POST', '/v1/merchants', { key: t.adminKey, body: '{"name":', headers: { 'content-type': 'application/json' } });
    expectError(r, 400, 'invalid_json');
    r = await t.call('POST', '/v1/stores', { key: a.merchantKey, json: { name: 'S', timezone: 'Mars/Olympus' } });
    expectError(r, 400);
    expect(r.body.error.message).toContain('timezone');
    expectError(await t.call('POST', '/v1/stores', { key: t.adminKey, json: { name: 'S', timezone: 'UTC' } }), 400);
    // A zone spelt in another case is stored as it is spelt in IANA's list; a zone name is never replaced by an alias.
    r = await t.call('POST', '/v1/stores', { key: a.merchantKey, json: { name: 'Lower', timezone: 'europe/paris' } });
    expect([r.status, r.body.timezone]).toEqual([201, 'Europe/Paris']);
    r = await t.call('POST', '/v1/stores', { key: a.merchantKey, json: { name: 'Kolkata', timezone: 'Asia/Kolkata' } });
    expect([r.status, r.body.timezone]).toEqual([201, 'Asia/Kolkata']);
    // JSON sent under another content type is refused as such, not read as an empty body.
    r = await t.call('POST', '/v1/merchants', { key: t.adminKey, body: '{"name":"x"}', headers: { 'content-type': 'text/plain' } });
    expectError(r, 415, 'unsupported_media_type');
    r = await t.call('POST', '/v1/merchants', { key: t.adminKey, body: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expectError(r, 415, 'unsupported_media_type');
    r = await t.call('GET', '/v1/captures/not-a-uuid', { key: a.merchantKey });
    expectError(r, 400);
    expect(r.body.error.message).toContain('id');
    expectError(await t.call('GET', `/v1/captures/${randomUUID()}`, { key: a.merchantKey }), 404);
    expectError(await t.call('POST', '/v1/identify?limit=99', { key: a.merchantKey }), 400);
    expectError(await t.call('GET', '/v1/nothing-here', { key: a.merchantKey }), 404, 'not_found');
    expectError(await t.call('PUT', '/v1/merchants', { key: t.adminKey }), 405, 'method_not_allowed');
    await t.call('POST', '/v1/people', { key: a.merchantKey, json: { displayName: 'A', externalId: 'dup' } });
    expectError(await t.call('POST', '/v1/people', { key: a.merchantKey, json: { displayName: 'B', externalId: 'dup' } }), 409, 'conflict');
  });

  it('creates merchants, stores and devices with the documented shapes', async () => {
    const m = await t.call('POST', '/v1/merchants', { key: t.adminKey, json: { name: 'Shape' } });
    expect(m.status).toBe(201);
    expect(m.body).toMatchObject({ id: expect.any(String), name: 'Shape' });
    const k = await t.call('POST', `/v1/merchants/${m.body.id}/keys`, { key: t.adminKey });
    expect(k.body.key).toMatch(/^fpk_/);
    const s = await t.call('POST', '/v1/stores', { key: t.adminKey, json: { merchantId: m.body.id, name: 'S1', timezone: 'America/New_York' } });
    expect(s.status).toBe(201);
    expect(s.body).toMatchObject({ id: expect.any(String), merchantId: m.body.id, name: 'S1', timezone: 'America/New_York' });
    const d = await t.call('POST', `/v1/stores/${s.body.id}/devices`, { key: t.adminKey, json: { name: 'bot' } });
    expect(d.status).toBe(201);
    expect(d.body).toMatchObject({ id: expect.any(String), key: expect.stringMatching(/^fpk_/), storeId: s.body.id });
    expectError(await t.call('POST', `/v1/merchants/${randomUUID()}/keys`, { key: t.adminKey }), 404);
    const list = await t.call('GET', '/v1/stores', { key: k.body.key });
    expect(list.body.stores.map((x: { id: string }) => x.id)).toEqual([s.body.id]);
  });
});
