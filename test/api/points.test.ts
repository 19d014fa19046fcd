import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awardPerk } from '../../src/services/perks.js';
import { seedTenant, startTestApi, type TestApi } from './support.js';

let t: TestApi;
let a: Awaited<ReturnType<typeof seedTenant>>;
let b: Awaited<ReturnType<typeof seedTenant>>;

beforeAll(async () => {
  t = await startTestApi();
  a = await seedTenant(t, 'Acme');
  b = await seedTenant(t, 'Rival');
});

afterAll(async () => {
  await t?.close();
});

async function createMember(): Promise<string> {
  const r = await t.call('POST', '/v1/people', { key: a.merchantKey, json: { displayName: 'Ada' } });
  expect(r.status).toBe(201);
  return r.body.id;
}

/** A capture of store A at `capturedAt`, as intake records it (awards reference their capture). */
async function capture(capturedAt: Date): Promise<string> {
  const batchId = randomUUID();
  const id = randomUUID();
  await t.env.db('batches').insert({ id: batchId, device_id: a.deviceId, store_id: a.storeId, merchant_id: a.merchantId });
  await t.env.db('captures').insert({
    id,
    batch_id: batchId,
    device_id: a.deviceId,
    store_id: a.storeId,
    merchant_id: a.merchantId,
    sha256: randomBytes(32).toString('hex'),
    blob_key: `captures/${id}`,
    bytes: 1,
    captured_at: capturedAt,
    captured_at_source: 'device',
    received_at: capturedAt,
  });
  return id;
}

/** Awards points as the aggregate stage does, in its own transaction. */
async function award(personId: string, capturedAt: Date, points = 5): Promise<number> {
  const captureId = await capture(capturedAt);
  return t.env.db.transaction((trx) =>
    awardPerk(trx, { personId, storeId: a.storeId, captureId, faceIndex: 0, seenAt: capturedAt }, { points, cooldownMinutes: 10 }),
  );
}

const redeem = (personId: string, json: unknown, key = a.merchantKey) => t.call('POST', `/v1/people/${personId}/redemptions`, { key, json });

describe('GET /v1/people/:id/points', () => {
  it('answers the balance and awards and redemptions as one history, latest first, page by page', async () => {
    const id = await createMember();
    await award(id, new Date('2026-11-27T10:00:00Z'), 20);
    await award(id, new Date('2026-11-27T11:00:00Z'), 20);
    const spent = await redeem(id, { points: 15, reason: 'coffee', idempotencyKey: 'order-1' });
    expect(spent.status).toBe(201);

    const first = await t.call('GET', `/v1/people/${id}/points?limit=2`, { key: a.merchantKey });
    expect(first.status).toBe(200);
    expect(first.body.balance).toBe(25);
    const rest = await t.call('GET', `/v1/people/${id}/points?limit=2&cursor=${first.body.nextCursor}`, { key: a.merchantKey });
    expect(rest.body.nextCursor).toBeNull();
    const items = [...first.body.items, ...rest.body.items];
    expect(items).toEqual([
      { id: spent.body.id, kind: 'redemption', points: -15, at: spent.body.redeemedAt, storeId: null, captureId: null, reason: 'coffee' },
      expect.objectContaining({ kind: 'award', points: 20, at: '2026-11-27T11:00:00.000Z', storeId: a.storeId, captureId: expect.any(String), reason: null }),
      expect.objectContaining({ kind: 'award', points: 20, at: '2026-11-27T10:00:00.000Z', storeId: a.storeId }),
    ]);
    expect((await t.call('GET', `/v1/people/${id}`, { key: a.merchantKey })).body.points).toBe(25);
    expect((await t.call('GET', `/v1/people/${id}/points`, { key: b.merchantKey })).status).toBe(404);
  });
});

describe('POST /v1/people/:id/redemptions', () => {
  it('refuses more points than the balance with 422 insufficient_points, and answers a repeated idempotency key with the first redemption', async () => {
    const id = await createMember();
    await award(id, new Date('2026-11-28T10:00:00Z'), 10);

    const tooMany = await redeem(id, { points: 11, reason: 'mug', idempotencyKey: 'k-1' });
    expect(tooMany).toMatchObject({ status: 422, body: { error: { code: 'insufficient_points', balance: 10 } } });

    const first = await redeem(id, { points: 6, reason: 'mug', idempotencyKey: 'k-1' });
    expect(first).toMatchObject({ status: 201, body: { personId: id, points: 6, reason: 'mug', idempotencyKey: 'k-1', balance: 4 } });
    const again = await redeem(id, { points: 6, reason: 'mug', idempotencyKey: 'k-1' });
    expect(again).toMatchObject({ status: 200, body: first.body });
    const reused = await redeem(id, { points: 1, reason: 'pen', idempotencyKey: 'k-1' });
    expect(reused).toMatchObject({ status: 409, body: { error: { code: 'idempotency_key_reused' } } });

    const ledger = await t.call('GET', `/v1/people/${id}/points`, { key: a.merchantKey });
    expect(ledger.body.balance).toBe(4);
    expect(ledger.body.items.filter((e: { kind: string }) => e.kind === 'redemption')).toHaveLength(1);
  });

  it('validates the body and answers 404 to another merchant, 403 to a device', async () => {
    const id = await createMember();
    for (const json of [{ points: 0, reason: 'x', idempotencyKey: 'k' }, { points: 1.5, reason: 'x', idempotencyKey: 'k' }, { points: 1, reason: 'x' }, { points: 1, idempotencyKey: 'k' }]) {
      expect((await redeem(id, json)).status, JSON.stringify(json)).toBe(400);
    }
    expect((await redeem(id, { points: 1, reason: 'x', idempotencyKey: 'k' }, b.merchantKey)).status).toBe(404);
    expect((await redeem(id, { points: 1, reason: 'x', idempotencyKey: 'k' }, a.deviceKey)).status).toBe(403);
  });

  it('never takes the balance below zero, nor redeems one key twice, under concurrent redemptions and awards', async () => {
    const id = await createMember();
    await award(id, new Date('2026-11-29T00:00:00Z'), 50);
    const hour = 3_600_000;
    const [redemptions, retries, awards] = await Promise.all([
      Promise.all(Array.from({ length: 16 }, (_, i) => redeem(id, { points: 10, reason: 'gift', idempotencyKey: `gift-${i}` }))),
      Promise.all(Array.from({ length: 4 }, () => redeem(id, { points: 10, reason: 'gift', idempotencyKey: 'gift-0' }))),
      Promise.all(Array.from({ length: 8 }, (_, i) => award(id, new Date(Date.parse('2026-11-29T01:00:00Z') + i * hour), 5))),
    ]);

    expect(awards).toEqual(Array(8).fill(5));
    const answers = [...redemptions, ...retries];
    for (const r of answers) expect([200, 201, 422], JSON.stringify(r.body)).toContain(r.status);
    const redeemed = answers.filter((r) => r.status === 201).length;
    // 90 points were ever available: at least the first 5 gifts of 10 and at most 9, and the balance says exactly what is left.
    expect(redeemed).toBeGreaterThanOrEqual(5);
    expect(redeemed).toBeLessThanOrEqual(9);
    const ledger = await t.call('GET', `/v1/people/${id}/points?limit=200`, { key: a.merchantKey });
    expect(ledger.body.balance).toBe(90 - 10 * redeemed);
    expect(ledger.body.items.reduce((sum: number, e: { points: number }) => sum + e.points, 0)).toBe(ledger.body.balance);
    expect(ledger.body.items.filter((e: { kind: string }) => e.kind === 'redemption')).toHaveLength(redeemed);
    // The five requests with key gift-0 redeemed once at most; every one that did not fail answered that redemption.
    const gift0 = [redemptions[0], ...retries].filter((r) => r.status !== 422);
    expect(gift0.filter((r) => r.status === 201)).toHaveLength(gift0.length > 0 ? 1 : 0);
    expect(new Set(gift0.map((r) => r.body.id)).size).toBeLessThanOrEqual(1);
  });
});
