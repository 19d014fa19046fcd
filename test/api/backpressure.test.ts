import { afterEach, describe, expect, it } from 'vitest';
import { makeImage, seedTenant, startTestApi, upload, type TestApi } from './support.js';

let t: TestApi | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const image = async () => ({ name: 'images', file: await makeImage('jpeg', 48) });

describe('intake back-pressure', () => {
  it('answers 429 with Retry-After once the queues are deeper than the bound, and records nothing', async () => {
    t = await startTestApi({ env: { MAX_QUEUE_DEPTH: '2' } });
    const tenant = await seedTenant(t);
    const first = await upload(t, tenant.deviceKey, [await image(), await image(), await image()]);
    expect(first.status).toBe(202);
    // The depth is cached for a second.
    await new Promise((resolve) => setTimeout(resolve, 1100));

    const refused = await upload(t, tenant.deviceKey, [await image()]);

    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('queue_full');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await t.env.db('captures').count({ n: '*' })).toEqual([{ n: 3 }]);
  });

  it('limits each device with a token bucket and leaves other devices alone', async () => {
    t = await startTestApi({ env: { DEVICE_UPLOAD_BURST: '2', DEVICE_UPLOADS_PER_MINUTE: '6' } });
    const tenant = await seedTenant(t);
    expect((await upload(t, tenant.deviceKey, [await image()])).status).toBe(202);
    expect((await upload(t, tenant.deviceKey, [await image()])).status).toBe(202);

    const limited = await upload(t, tenant.deviceKey, [await image()]);
    expect([limited.status, limited.body.error.code]).toEqual([429, 'rate_limited']);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(9);
    expect(retryAfter).toBeLessThanOrEqual(10);

    const other = await t.call('POST', `/v1/stores/${tenant.storeId}/devices`, { key: tenant.merchantKey, json: { name: 'robot-2' } });
    expect((await upload(t, other.body.key, [await image()])).status).toBe(202);
  });
});
