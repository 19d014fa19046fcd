/** An unexpected failure answers 500 "internal error" with a request id, never the SQL or values behind it. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedTenant, startTestApi, type TestApi } from './support.js';

let t: TestApi;
beforeAll(async () => {
  t = await startTestApi();
});
afterAll(async () => {
  await t?.close();
});

describe('internal errors', () => {
  it('say only "internal error" and the request id that the logs carry', async () => {
    const tenant = await seedTenant(t, 'Broken Co');
    // A table gone under the API: knex's error quotes the SQL and the values bound into it.
    await t.env.db.raw('RENAME TABLE batches TO batches_gone');
    const batchId = '5f0c7f5e-4c1e-4a53-9d3f-0c2a1f7f0001';
    const r = await t.call('GET', `/v1/batches/${batchId}`, { key: tenant.deviceKey });
    expect(r.status).toBe(500);
    expect(r.body).toEqual({ error: { code: 'internal_error', message: 'internal error', requestId: r.headers.get('x-request-id') } });
    expect(JSON.stringify(r.body)).not.toMatch(/select|batches|5f0c7f5e/i);
  });
});
