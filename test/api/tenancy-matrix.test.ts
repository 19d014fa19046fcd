/**
 * The tenancy matrix (issue 14): every operation of the OpenAPI document × every caller (admin,
 * merchant A, merchant B, device of A, device of B, no key), with path and query ids naming tenant
 * A's resources. Generated from the document, so a new route is checked the day it is documented
 * (test/api/service.test.ts checks that every served route is). Expected, from its `x-roles`:
 * - no key: 401 (public operations: anything else);
 * - a role not listed: 403;
 * - a listed role of tenant B on tenant A's ids: 404 (400 when the body is refused before any
 *   lookup: nothing about A is read), never a success;
 * - a listed role of tenant A, or a listed admin: anything but 401, 403 or 404 (bodies are empty, so
 *   400 is expected for most writes). Deletions run last, on resources made for them.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, seedTenant, startTestApi, upload, type TestApi } from './support.js';

type Operation = { method: string; path: string; roles: string[]; parameters: { name: string; in: string }[] };
type Caller = { name: string; role: 'admin' | 'merchant' | 'device' | 'none'; tenant: 'A' | 'B' | null; key?: string };

let t: TestApi;
let operations: Operation[];
let callers: Caller[];
/** Tenant A's resources by the path segment (or parameter) that names them. */
let idsOfA: Record<string, string>;
/** Resources of A made to be deleted, so deleting them leaves the rest of the matrix intact. */
let disposableOfA: Record<string, string>;

beforeAll(async () => {
  t = await startTestApi({ env: { WEBHOOK_ALLOW_PRIVATE: '127.0.0.0/8' } });
  const a = await seedTenant(t, 'Matrix A');
  const b = await seedTenant(t, 'Matrix B');
  const sent = await upload(t, a.deviceKey, [{ name: 'images', file: await makeImage() }]);
  const person = await t.call('POST', '/v1/people', { key: a.merchantKey, json: { displayName: 'Matrix Member' } });
  const reprocess = await t.call('POST', '/v1/reprocess', { key: a.merchantKey, json: { batchId: sent.body.batchId } });
  const reembed = await t.call('POST', '/v1/reembed', { key: t.adminKey, json: { pack: 'retinaface' } });
  const webhook = await t.call('PUT', `/v1/merchants/${a.merchantId}/webhook`, { key: a.merchantKey, json: { url: 'http://127.0.0.1:9/hook' } });
  const spareDevice = await t.call('POST', `/v1/stores/${a.storeId}/devices`, { key: a.merchantKey, json: { name: 'spare' } });
  const spareKey = await t.call('POST', `/v1/devices/${a.deviceId}/keys`, { key: a.merchantKey });
  const sparePerson = await t.call('POST', '/v1/people', { key: a.merchantKey, json: { displayName: 'Spare Member' } });
  for (const r of [sent, person, reprocess, reembed, webhook, spareDevice, spareKey, sparePerson]) expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
  // Rows no request can make without a worker: an enrolled face of each member, a visitor. The audit
  // entry is the member's creation (undo: 422 for A, 404 for B); a face of A's capture, unmatched.
  const faceOf = async (personId: string) => {
    const id = randomUUID();
    await t.env.db('person_faces').insert({ id, person_id: personId, blob_key: `people/${personId}/x`, pack: 'default', face: '{}' });
    return id;
  };
  const visitorId = randomUUID();
  await t.env.db('visitors').insert({ id: visitorId, merchant_id: a.merchantId, first_seen_at: new Date(), last_seen_at: new Date() });

  const entryOfA = await t.env.db('audit_entries').where('merchant_id', a.merchantId).first('id');
  const captureFaceOfA = randomUUID();
  await t.env.db('faces').insert({
    id: captureFaceOfA, capture_id: sent.body.captures[0].id, face_index: 0, box_x: 0, box_y: 0, box_width: 10, box_height: 10, landmarks: '[]', score: 0.9,
  });

  idsOfA = {
    audit: String(entryOfA.id),
    faces: captureFaceOfA,
    merchants: a.merchantId,
    stores: a.storeId,
    devices: a.deviceId,
    people: person.body.id,
    batches: sent.body.batchId,
    captures: sent.body.captures[0].id,
    visitors: visitorId,
    faceId: await faceOf(person.body.id),
    reprocess: reprocess.body.jobId,
    // Queued only: no worker runs it here.
    reembed: reembed.body.jobId,
    merchantId: a.merchantId,
    storeId: a.storeId,
  };
  disposableOfA = { devices: spareDevice.body.id, keys: spareKey.body.id, people: sparePerson.body.id, faceId: await faceOf(sparePerson.body.id) };
  callers = [
    { name: 'admin', role: 'admin', tenant: null, key: t.adminKey },
    { name: 'merchant A', role: 'merchant', tenant: 'A', key: a.merchantKey },
    { name: 'merchant B', role: 'merchant', tenant: 'B', key: b.merchantKey },
    { name: 'device of A', role: 'device', tenant: 'A', key: a.deviceKey },
    { name: 'device of B', role: 'device', tenant: 'B', key: b.deviceKey },
    { name: 'no key', role: 'none', tenant: null },
  ];

  const document = (await t.call('GET', '/v1/openapi.json')).body;
  operations = Object.entries(document.paths as Record<string, Record<string, { 'x-roles': string[]; parameters?: Operation['parameters'] }>>).flatMap(
    ([path, methods]) => Object.entries(methods).map(([method, spec]) => ({ method: method.toUpperCase(), path, roles: spec['x-roles'], parameters: spec.parameters ?? [] })),
  );
});

afterAll(async () => {
  await t?.close();
});

/** The request path with A's ids; throws for a parameter with no fixture, so a new kind of id cannot slip through. */
function requestPath(operation: Operation, ids: Record<string, string>): string {
  const resource = operation.path.split('/')[2];
  const path = operation.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const id = name === 'id' || name === 'jobId' ? ids[resource] ?? idsOfA[resource] : ids[name] ?? idsOfA[name];
    if (!id) throw new Error(`tenancy matrix: no fixture for {${name}} in ${operation.method} ${operation.path}; add one`);
    return id;
  });
  const query = operation.parameters.filter((p) => p.in === 'query' && idsOfA[p.name]).map((p) => `${p.name}=${idsOfA[p.name]}`);
  return query.length > 0 ? `${path}?${query.join('&')}` : path;
}

const namesTenantA = (operation: Operation) => /\{/.test(operation.path) || operation.parameters.some((p) => p.in === 'query' && idsOfA[p.name]);

async function check(operation: Operation, caller: Caller, ids: Record<string, string> = {}): Promise<string | null> {
  const path = requestPath(operation, ids);
  const hasBody = ['POST', 'PUT', 'PATCH'].includes(operation.method);
  const r = await t.call(operation.method, path, { key: caller.key, ...(hasBody ? { json: {} } : {}) });
  const seen = `${caller.name}: ${operation.method} ${path} -> ${r.status}`;
  if (operation.roles.length === 0) return r.status === 401 || r.status === 403 ? `${seen}, expected a public answer` : null;
  if (caller.role === 'none') return r.status === 401 ? null : `${seen}, expected 401`;
  if (!operation.roles.includes(caller.role)) return r.status === 403 ? null : `${seen}, expected 403`;
  if (caller.tenant === 'B' && namesTenantA(operation)) return r.status === 404 || r.status === 400 ? null : `${seen}, expected 404`;
  return [401, 403, 404].includes(r.status) ? `${seen}, expected the operation to be served` : null;
}

describe('tenancy matrix', () => {
  it('covers every documented operation', () => {
    expect(operations.length).toBeGreaterThan(35);
    for (const operation of operations) expect(operation.roles, `${operation.method} ${operation.path} has no x-roles`).toBeInstanceOf(Array);
  });

  it('answers every caller what its role and tenant allow, on every operation', async () => {
    const wrong: string[] = [];
    const reads = operations.filter((o) => o.method !== 'DELETE');
    const deletions = operations.filter((o) => o.method === 'DELETE');
    // Refusals first (they change nothing), then the allowed calls, deletions last on disposable ids.
    for (const operation of operations) {
      for (const caller of callers.filter((c) => c.tenant !== 'A' && c.role !== 'admin')) {
        const problem = await check(operation, caller, operation.method === 'DELETE' ? disposableOfA : {});
        if (problem) wrong.push(problem);
      }
    }
    for (const operation of reads) {
      for (const caller of callers.filter((c) => c.tenant === 'A' || c.role === 'admin')) {
        const problem = await check(operation, caller);
        if (problem) wrong.push(problem);
      }
    }
    for (const operation of deletions) {
      const owner = callers.find((c) => c.tenant === 'A' && operation.roles.includes(c.role)) ?? callers[0];
      for (const caller of callers.filter((c) => (c.tenant === 'A' || c.role === 'admin') && c !== owner)) {
        if (!operation.roles.includes(caller.role)) {
          const problem = await check(operation, caller, disposableOfA);
          if (problem) wrong.push(problem);
        }
      }
      const problem = await check(operation, owner, disposableOfA);
      if (problem) wrong.push(problem);
    }
    expect(wrong).toEqual([]);
  }, 120_000);
});
