/**
 * Distinct counts read from spans and the median visit length read from the length index (issue
 * 17) against the same figures taken straight from visits, over random ranges: ranges inside a
 * subject's span (the probe), around it, and cutting it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnvironment, type TestEnvironment } from '../support/services.js';
import { decodeSummaryCursor, demographics, merchantSummary, traffic, visitors, type StoreRef } from '../../src/services/analytics/query.js';
import { zone } from '../../src/services/analytics/time.js';
import { recordCapture, seedPerson, seedTenant, seedVisitor, seededRandom, type Tenant } from './support.js';

let env: TestEnvironment;
let t: Tenant;
let stores: StoreRef[];
const base = Date.parse('2026-06-01T00:00:00Z');
const DAY = 86_400_000;

beforeAll(async () => {
  env = await createTestEnvironment();
  t = await seedTenant(env.db, 'spans', ['Asia/Kathmandu', 'America/New_York', 'UTC']);
  stores = (await env.db('stores').where('merchant_id', t.merchantId).orderBy(['name', 'id']).select('id', 'merchant_id as merchantId', 'name', 'timezone'));
  const subjects = [
    ...(await Promise.all(Array.from({ length: 3 }, () => seedPerson(env.db, t.merchantId)))).map((id) => ({ kind: 'member' as const, subjectId: id })),
    ...(await Promise.all(Array.from({ length: 8 }, () => seedVisitor(env.db, t.merchantId)))).map((id) => ({ kind: 'visitor' as const, subjectId: id })),
  ];
  const rnd = seededRandom(99);
  for (let i = 0; i < 150; i++) {
    const faces = subjects.filter(() => rnd() < 0.15);
    if (faces.length === 0) continue;
    const store = Math.floor(rnd() * 3);
    const at = base + Math.floor(rnd() * 20 * 24 * 60) * 60_000;
    await recordCapture(env.db, t, store, new Date(at), faces);
    // a few more sightings of the same faces minutes later: visits of different lengths
    for (let k = Math.floor(rnd() * 3); k > 0; k--) await recordCapture(env.db, t, store, new Date(at + k * Math.floor(1 + rnd() * 25) * 60_000), faces);
  }
});
afterAll(async () => {
  await env?.cleanup();
});

/** The figures as the visits table gives them, for visits starting in [lo, hi) at the store. */
async function fromVisits(storeIds: string[], lo: (storeId: string) => number, hi: number) {
  const rows: { store_id: string; subject_id: string; subject_kind: string; started_at: Date; ended_at: Date }[] = await env.db('visits')
    .whereIn('store_id', storeIds).select('store_id', 'subject_id', 'subject_kind', 'started_at', 'ended_at');
  const inRange = rows.filter((r) => r.started_at.getTime() >= lo(r.store_id) && r.started_at.getTime() < hi);
  const visitsBy = new Map<string, number>();
  for (const r of inRange.filter((x) => x.subject_kind === 'visitor')) visitsBy.set(r.subject_id, (visitsBy.get(r.subject_id) ?? 0) + 1);
  const everywhere: { subject_id: string; first: Date }[] = await env.db('visits').where('merchant_id', t.merchantId).groupBy('subject_id')
    .select('subject_id', env.db.raw('MIN(started_at) AS first'));
  const firstAt = new Map(everywhere.map((r) => [r.subject_id, r.first.getTime()]));
  return {
    returning: (lo: number) => [...visitsBy.keys()].filter((id) => firstAt.get(id)! < lo).length,
    subjects: new Set(inRange.map((r) => r.subject_id)).size,
    members: new Set(inRange.filter((r) => r.subject_kind === 'member').map((r) => r.subject_id)).size,
    visitorVisits: [...visitsBy.values()].sort((a, b) => a - b),
    durations: inRange.map((r) => r.ended_at.getTime() - r.started_at.getTime()).sort((a, b) => a - b),
  };
}

describe('whole-range figures', () => {
  it('distinct counts from spans and the median from the length index equal those from visits over random ranges', async () => {
    const rnd = seededRandom(5);
    const ranges = [[base - DAY, base + 30 * DAY], [base + 5 * DAY, base + 6 * DAY]];
    for (let i = 0; i < 25; i++) {
      const from = base + Math.floor(rnd() * 20 * 24) * 3_600_000;
      ranges.push([from, from + (1 + Math.floor(rnd() * 10 * 24)) * 3_600_000]);
    }
    // Ranges ending just after a span's first visit, and starting on its last visit's day: the
    // span rows of those days are counted beside the span-day sums (spans.ts).
    const edges: { first_visit_at: Date; last_visit_at: Date }[] = await env.db('analytics_store_subjects').whereIn('store_id', t.storeIds)
      .orderBy(['store_id', 'subject_id']).limit(6).select('first_visit_at', 'last_visit_at');
    for (const e of edges) {
      ranges.push([e.first_visit_at.getTime() - 2 * DAY, e.first_visit_at.getTime() + 3_600_000], [e.last_visit_at.getTime() - 3_600_000, e.last_visit_at.getTime() + 2 * DAY]);
    }
    let probed = 0;
    for (const [from, to] of ranges) {
      for (const store of stores) {
        const lo = zone(store.timezone).dayStart(from);
        const expected = await fromVisits([store.id], () => lo, to);
        const range = { from, to, interval: 'day' as const };
        expect((await traffic(env.db, store, range)).totals.uniqueSubjects).toBe(expected.subjects);
        const v = await visitors(env.db, store, range);
        expect(v.totals.uniqueVisitors).toBe(expected.visitorVisits.length);
        expect(v.totals.repeatVisitors).toBe(expected.visitorVisits.filter((n) => n >= 2).length);
        expect(v.totals.returningVisitors).toBe(expected.returning(lo));
        expect(v.frequency.map((f) => f.visitors).reduce((a, b) => a + b, 0)).toBe(expected.visitorVisits.length);
        expect(v.frequency[0].visitors).toBe(expected.visitorVisits.filter((n) => n === 1).length);
        const d = expected.durations;
        const median = d.length === 0 ? 0 : (d[Math.floor((d.length - 1) / 2)] + d[Math.floor(d.length / 2)]) / 2;
        expect((await demographics(env.db, store, range)).totals.medianVisitMinutes).toBe(Math.round((median / 60_000) * 100) / 100);
        probed += (await env.db('analytics_store_subjects').where('store_id', store.id).where('first_visit_at', '<', new Date(lo))
          .where('last_visit_at', '>=', new Date(to)).count({ n: '*' }).first())?.n as number;
      }
      const summary = await merchantSummary(env.db, { id: t.merchantId, name: 'spans' }, { from, to }, { limit: 50 });
      const starts = new Map(stores.map((s) => [s.id, zone(s.timezone).dayStart(from)]));
      const merchantWide = await fromVisits(t.storeIds, (id) => starts.get(id)!, to);
      expect(summary.totals.uniqueSubjects).toBe(merchantWide.subjects);
      expect(summary.totals.membersSeen).toBe(merchantWide.members);
      for (const row of summary.stores) expect(row.uniqueSubjects).toBe((await fromVisits([row.storeId], () => starts.get(row.storeId)!, to)).subjects);
    }
    expect(Number(probed)).toBeGreaterThan(0); // some spans strictly contained a range: the probe ran
  });

  it('the summary lists its stores a page at a time, with totals over every store', async () => {
    const range = { from: base - DAY, to: base + 30 * DAY };
    const whole = await merchantSummary(env.db, { id: t.merchantId, name: 'spans' }, range, { limit: 50 });
    expect(whole.stores.map((s) => s.storeId)).toEqual(stores.map((s) => s.id));
    expect(whole.nextCursor).toBeNull();
    const first = await merchantSummary(env.db, { id: t.merchantId, name: 'spans' }, range, { limit: 2 });
    expect(first.stores).toEqual(whole.stores.slice(0, 2));
    expect(first.totals).toEqual(whole.totals);
    expect(first.nextCursor).not.toBeNull();
    const second = await merchantSummary(env.db, { id: t.merchantId, name: 'spans' }, range, { limit: 2, after: decodeSummaryCursor(first.nextCursor!) });
    expect(second.stores).toEqual(whole.stores.slice(2));
    expect(second.totals).toEqual(whole.totals);
    expect(second.nextCursor).toBeNull();
  });
});
