/** Enrolment and identify share one token bucket per merchant: one merchant cannot starve the others' sign-ins. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedTenant, startTestApi, type TestApi } from './support.js';

let t: TestApi;
beforeAll(async () => {
  t = await startTestApi({ env: { MERCHANT_INTERACTIVE_PER_MINUTE: '1', MERCHANT_INTERACTIVE_BURST: '2' } });
});
afterAll(async () => {
  await t?.close();
});

describe('per-merchant interactive limit', () => {
  it('answers 429 with Retry-After once a merchant spent its burst, across enrol and identify, and leaves other merchants alone', async () => {
    const [a, b] = [await seedTenant(t, 'Busy Co'), await seedTenant(t, 'Quiet Co')];
    const person = async (key: string) => (await t.call('POST', '/v1/people', { key, json: { displayName: 'Ada' } })).body.id as string;
    const [personA, personB] = [await person(a.merchantKey), await person(b.merchantKey)];
    // Requests without an image fail fast (no worker needed) but still spend a token.
    const enrol = (key: string, personId: string) => t.call('POST', `/v1/people/${personId}/faces`, { key, json: {} });
    expect((await enrol(a.merchantKey, personA)).status).not.toBe(429);
    expect((await t.call('POST', '/v1/identify', { key: a.merchantKey, json: {} })).status).not.toBe(429);

    const refused = await enrol(a.merchantKey, personA);
    expect([refused.status, refused.body.error.code]).toEqual([429, 'rate_limited']);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await t.call('POST', '/v1/identify', { key: a.merchantKey, json: {} })).status).toBe(429);
    expect((await enrol(b.merchantKey, personB)).status).not.toBe(429);
  });
});
