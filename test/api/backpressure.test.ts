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

  it('limits each device with a token bucket whose Retry-After holds, and leaves other devices alone', async () => {
    // 12 a minute: a token every 5 s, a burst of 2.
    t = await startTestApi({ env: { DEVICE_UPLOAD_BURST: '2', DEVICE_UPLOADS_PER_MINUTE: '12' } });
    const tenant = await seedTenant(t);
    expect((await upload(t, tenant.deviceKey, [await image()])).status).toBe(202);
    expect((await upload(t, tenant.deviceKey, [await image()])).status).toBe(202);

    // The bucket is empty now, unless this machine took a whole token's time over the two uploads:
    // then a further upload goes through, and one more is asked for.
    let limited = await upload(t, tenant.deviceKey, [await image()]);
    let sentAt = Date.now();
    for (let i = 0; i < 5 && limited.status === 202; i++) {
      sentAt = Date.now();
      limited = await upload(t, tenant.deviceKey, [await image()]);
    }
    expect([limited.status, limited.body.error.code]).toEqual([429, 'rate_limited']);
    const retryAfter = Number(limited.headers.get('retry-after'));
    // Whole seconds until the next token: at least 1, at most one token's time.
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(5);

    const other = await t.call('POST', `/v1/stores/${tenant.storeId}/devices`, { key: tenant.merchantKey, json: { name: 'robot-2' } });
    expect((await upload(t, other.body.key, [await image()])).status).toBe(202);

    // Retry-After tells the truth: retried until accepted (within a generous bound), the device gets
    // through, and not before the time it was told (less the second that rounding up can add).
    let accepted = limited;
    const deadline = Date.now() + retryAfter * 1000 + 30_000;
    while (accepted.status === 429 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      accepted = await upload(t, tenant.deviceKey, [await image()]);
    }
    expect(accepted.status).toBe(202);
    expect(Date.now() - sentAt).toBeGreaterThan((retryAfter - 1) * 1000);
  });
});
