import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnvironment, type TestEnvironment } from '../support/services.js';
import { awardPerk } from '../../src/services/perks.js';
import { recordCapture, seedPerson, seedTenant, withRetry } from './support.js';

let env: TestEnvironment;
beforeAll(async () => {
  env = await createTestEnvironment();
});
afterAll(async () => {
  await env?.cleanup();
});

const perks = { points: 5, cooldownMinutes: 10 };
const points = async (id: string) => Number((await env.db('people').where({ id }).first('points')).points);

describe('awardPerk', () => {
  it('once per member per store per 10 minutes of capturedAt, in either direction', async () => {
    const t = await seedTenant(env.db, 'perks', ['UTC', 'UTC']);
    const m = await seedPerson(env.db, t.merchantId);
    const face = [{ kind: 'member' as const, subjectId: m }];
    const award = async (store: number, iso: string) => (await recordCapture(env.db, t, store, new Date(iso), face, { perks })).points[0];
    expect(await award(0, '2026-04-01T10:00:00Z')).toBe(5);
    expect(await award(0, '2026-04-01T10:05:00Z')).toBe(0);
    expect(await award(0, '2026-04-01T10:09:59.999Z')).toBe(0);
    expect(await award(0, '2026-04-01T10:10:00Z')).toBe(5); // exactly the cooldown later
    expect(await award(0, '2026-04-01T09:55:00Z')).toBe(0); // late upload, 5 minutes before an award
    expect(await award(0, '2026-04-01T09:50:00Z')).toBe(5); // late upload, exactly 10 minutes before
    expect(await award(1, '2026-04-01T10:05:00Z')).toBe(5); // another store has its own cooldown
    expect(await points(m)).toBe(20);
    expect(await env.db('perk_awards').where({ person_id: m }).count({ n: '*' }).first()).toEqual({ n: 4 });
  });

  it('a redelivered award for the same capture face changes nothing', async () => {
    const t = await seedTenant(env.db, 'redeliver', ['UTC']);
    const m = await seedPerson(env.db, t.merchantId);
    const { captureId } = await recordCapture(env.db, t, 0, new Date('2026-04-02T10:00:00Z'), [{ kind: 'member', subjectId: m }], { perks });
    const again = await env.db.transaction((trx) =>
      awardPerk(trx, { personId: m, storeId: t.storeIds[0], captureId, faceIndex: 0, seenAt: new Date('2026-04-02T12:00:00Z') }, perks));
    expect(again).toBe(0);
    expect(await points(m)).toBe(5);
  });

  it('concurrent recognitions of one member award exactly once per cooldown', async () => {
    const t = await seedTenant(env.db, 'concurrent', ['UTC']);
    const m = await seedPerson(env.db, t.merchantId);
    const base = Date.parse('2026-04-03T10:00:00Z');
    // 12 captures within 9 minutes, and 12 more within 9 minutes starting 20 minutes later: two awards.
    const instants = [...Array.from({ length: 12 }, (_, i) => base + i * 45_000), ...Array.from({ length: 12 }, (_, i) => base + 20 * 60_000 + i * 45_000)];
    const results = await Promise.all(instants.map((ms, i) =>
      withRetry(() => recordCapture(env.db, t, 0, new Date(ms), [{ kind: 'member', subjectId: m }], { perks, lockFirst: i % 3 !== 0 }))));
    expect(results.map((r) => r.points[0]).reduce((a, b) => a + b, 0)).toBe(10);
    expect(await points(m)).toBe(10);
    const awards = await env.db('perk_awards').where({ person_id: m }).orderBy('awarded_at').select('awarded_at');
    expect(awards).toHaveLength(2);
    expect((awards[1].awarded_at as Date).getTime() - (awards[0].awarded_at as Date).getTime()).toBeGreaterThanOrEqual(10 * 60_000);
  });
});
