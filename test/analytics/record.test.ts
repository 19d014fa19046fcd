import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnvironment, type TestEnvironment } from '../support/services.js';
import { rebuildAnalytics } from '../../src/services/analytics/rebuild.js';
import { lockSubjects, reassignSightings, retractCaptureSightings, type Subject } from '../../src/services/analytics/index.js';
import { sessionise } from '../../src/services/analytics/sessionise.js';
import { ResultsService } from '../../src/services/results.js';
import { purgeStaleVisitors } from '../../src/services/retention.js';
import { openBlobStore } from '../../src/storage/blobs.js';
import { deletePersonRows } from '../../src/storage/repositories/people.js';
import { CaptureLifecycle } from '../../src/storage/capture-lifecycle.js';
import type { Landmarks5 } from '../../src/vision/types.js';
import { recordCapture, rollups, seedPerson, seedTenant, seedVisitor, visitSpans, withRetry, seededRandom } from './support.js';

let env: TestEnvironment;
beforeAll(async () => {
  env = await createTestEnvironment();
});
afterAll(async () => {
  await env?.cleanup();
});

const at = (iso: string) => new Date(iso);
const pick = (rows: Record<string, unknown>[], ...cols: string[]) =>
  rows.map((r) => Object.fromEntries(['bucket_start', ...cols].map((c) => [c, r[c]])));

async function snapshot(storeIds: string[]) {
  const db = env.db;
  const visits = await db('visits').whereIn('store_id', storeIds)
    .orderBy(['store_id', 'subject_id', 'started_at'])
    .select('store_id', 'subject_id', 'subject_kind', 'started_at', 'ended_at', 'sightings', 'age_milli_sum', 'age_count', 'male_count', 'female_count');
  const roll = await db('analytics_rollups').whereIn('store_id', storeIds).orderBy(['store_id', 'granularity', 'bucket_start']);
  const subjects = await db('analytics_subjects').orderBy(['merchant_id', 'subject_id']).select('merchant_id', 'subject_id', 'first_visit_at', 'first_visit_store_id', 'last_visit_at');
  const spans = await db('analytics_store_subjects').whereIn('store_id', storeIds).orderBy(['store_id', 'subject_id']);
  const spanDays = await db('analytics_span_days').whereIn('store_id', storeIds).orderBy(['store_id', 'utc_day', 'subject_kind']);
  const merchantSpanDays = await db('analytics_merchant_span_days').whereIn('merchant_id', db('stores').whereIn('id', storeIds).select('merchant_id'))
    .orderBy(['merchant_id', 'utc_day', 'subject_kind']);
  return { visits, roll, subjects, spans, spanDays, merchantSpanDays };
}

describe('recordSightings', () => {
  it('late sightings extend and merge visits, and the hour rollup follows', async () => {
    const t = await seedTenant(env.db, 'merge', ['UTC']);
    const v = await seedVisitor(env.db, t.merchantId);
    const face = { kind: 'visitor' as const, subjectId: v, age: 30, gender: 'male' as const };
    await recordCapture(env.db, t, 0, at('2026-02-02T10:00:00Z'), [face]);
    await recordCapture(env.db, t, 0, at('2026-02-02T10:50:00Z'), [face]);
    expect(await visitSpans(env.db, t.storeIds[0], v)).toEqual([
      ['2026-02-02T10:00:00.000Z', '2026-02-02T10:00:00.000Z', 1],
      ['2026-02-02T10:50:00.000Z', '2026-02-02T10:50:00.000Z', 1],
    ]);
    expect(pick(await rollups(env.db, t.storeIds[0], 'hour'), 'visits', 'unique_subjects', 'new_visitors', 'returning_visitors')).toEqual([
      { bucket_start: '2026-02-02T10:00:00.000Z', visits: 2, unique_subjects: 1, new_visitors: 1, returning_visitors: 0 },
    ]);
    // A late upload fills the gap: one visit.
    await recordCapture(env.db, t, 0, at('2026-02-02T10:25:00Z'), [face]);
    expect(await visitSpans(env.db, t.storeIds[0], v)).toEqual([['2026-02-02T10:00:00.000Z', '2026-02-02T10:50:00.000Z', 3]]);
    // A late earlier sighting in the previous hour extends the visit backwards: it moves to 09:00.
    await recordCapture(env.db, t, 0, at('2026-02-02T09:40:00Z'), [face]);
    expect(await visitSpans(env.db, t.storeIds[0], v)).toEqual([['2026-02-02T09:40:00.000Z', '2026-02-02T10:50:00.000Z', 4]]);
    const hours = await rollups(env.db, t.storeIds[0], 'hour');
    expect(pick(hours, 'visits', 'unique_subjects', 'visitor_visits', 'new_visitors', 'sightings', 'duration_ms_sum', 'male_visits', 'age_25_34')).toEqual([
      { bucket_start: '2026-02-02T09:00:00.000Z', visits: 1, unique_subjects: 1, visitor_visits: 1, new_visitors: 1, sightings: 4, duration_ms_sum: 70 * 60_000, male_visits: 1, age_25_34: 1 },
    ]);
    // At exactly the gap after the end: a new visit.
    await recordCapture(env.db, t, 0, at('2026-02-02T11:20:00Z'), [face]);
    expect(await visitSpans(env.db, t.storeIds[0], v)).toHaveLength(2);
    const day = await rollups(env.db, t.storeIds[0], 'day');
    expect(pick(day, 'visits', 'unique_subjects', 'new_visitors', 'returning_visitors')).toEqual([
      { bucket_start: '2026-02-02T00:00:00.000Z', visits: 2, unique_subjects: 1, new_visitors: 1, returning_visitors: 0 },
    ]);
  });

  it('new vs returning follows the first visit at the merchant, across stores and late uploads', async () => {
    const t = await seedTenant(env.db, 'nvr', ['UTC', 'UTC']);
    const [a, b] = t.storeIds;
    const v = await seedVisitor(env.db, t.merchantId);
    const face = { kind: 'visitor' as const, subjectId: v };
    await recordCapture(env.db, t, 0, at('2026-03-02T10:00:00Z'), [face]);
    await recordCapture(env.db, t, 1, at('2026-03-03T15:00:00Z'), [face]);
    await recordCapture(env.db, t, 1, at('2026-03-02T18:00:00Z'), [face]); // same day as the first, other store
    const cols = ['visits', 'new_visitors', 'returning_visitors'];
    expect(pick(await rollups(env.db, a, 'day'), ...cols)).toEqual([{ bucket_start: '2026-03-02T00:00:00.000Z', visits: 1, new_visitors: 1, returning_visitors: 0 }]);
    expect(pick(await rollups(env.db, b, 'day'), ...cols)).toEqual([
      { bucket_start: '2026-03-02T00:00:00.000Z', visits: 1, new_visitors: 0, returning_visitors: 0 },
      { bucket_start: '2026-03-03T00:00:00.000Z', visits: 1, new_visitors: 0, returning_visitors: 1 },
    ]);
    // The robot at store B was offline: an upload from March 1st makes B the first visit.
    await recordCapture(env.db, t, 1, at('2026-03-01T12:00:00Z'), [face]);
    expect(pick(await rollups(env.db, a, 'day'), ...cols)).toEqual([{ bucket_start: '2026-03-02T00:00:00.000Z', visits: 1, new_visitors: 0, returning_visitors: 1 }]);
    expect(pick(await rollups(env.db, a, 'hour'), ...cols)).toEqual([{ bucket_start: '2026-03-02T10:00:00.000Z', visits: 1, new_visitors: 0, returning_visitors: 1 }]);
    expect(pick(await rollups(env.db, b, 'day'), ...cols)).toEqual([
      { bucket_start: '2026-03-01T00:00:00.000Z', visits: 1, new_visitors: 1, returning_visitors: 0 },
      { bucket_start: '2026-03-02T00:00:00.000Z', visits: 1, new_visitors: 0, returning_visitors: 1 },
      { bucket_start: '2026-03-03T00:00:00.000Z', visits: 1, new_visitors: 0, returning_visitors: 1 },
    ]);
    const before = await snapshot([a, b]);
    await rebuildAnalytics(env.db, { storeId: a, from: at('2026-01-01T00:00:00Z'), to: at('2026-04-01T00:00:00Z'), visitGapMinutes: 30 });
    await rebuildAnalytics(env.db, { storeId: b, from: at('2026-01-01T00:00:00Z'), to: at('2026-04-01T00:00:00Z'), visitGapMinutes: 30 });
    expect(await snapshot([a, b])).toEqual(before);
  });

  it('buckets by the store timezone on the fall-back day (two 01:00 hours)', async () => {
    const t = await seedTenant(env.db, 'dst', ['America/New_York']);
    const m = await seedPerson(env.db, t.merchantId);
    const face = { kind: 'member' as const, subjectId: m };
    await recordCapture(env.db, t, 0, at('2026-11-01T05:30:00Z'), [face]); // 01:30 EDT
    await recordCapture(env.db, t, 0, at('2026-11-01T06:30:00Z'), [face]); // 01:30 EST, 60 min later
    expect(pick(await rollups(env.db, t.storeIds[0], 'hour'), 'visits', 'member_visits', 'local_hour')).toEqual([
      { bucket_start: '2026-11-01T05:00:00.000Z', visits: 1, member_visits: 1, local_hour: 1 },
      { bucket_start: '2026-11-01T06:00:00.000Z', visits: 1, member_visits: 1, local_hour: 1 },
    ]);
    expect(pick(await rollups(env.db, t.storeIds[0], 'day'), 'visits', 'unique_subjects', 'member_visits', 'new_visitors')).toEqual([
      { bucket_start: '2026-11-01T04:00:00.000Z', visits: 2, unique_subjects: 1, member_visits: 2, new_visitors: 0 },
    ]);
  });

  it('concurrent workers in any order give the same visits and rollups as a rebuild from sightings', async () => {
    const t = await seedTenant(env.db, 'race', ['Europe/Paris', 'America/New_York']);
    const people = [await seedPerson(env.db, t.merchantId), await seedPerson(env.db, t.merchantId)];
    const visitors = [await seedVisitor(env.db, t.merchantId), await seedVisitor(env.db, t.merchantId), await seedVisitor(env.db, t.merchantId)];
    const rnd = seededRandom(42);
    const base = Date.parse('2026-03-28T20:00:00Z'); // spans the Paris DST change (Mar 29)
    const captures: { store: number; at: Date; faces: { kind: 'member' | 'visitor'; subjectId: string; age: number; gender: 'male' | 'female' }[] }[] = [];
    for (let i = 0; i < 120; i++) {
      const subjects = [...people.map((id) => ({ kind: 'member' as const, id })), ...visitors.map((id) => ({ kind: 'visitor' as const, id }))]
        .filter(() => rnd() < 0.35);
      if (subjects.length === 0) continue;
      captures.push({
        store: rnd() < 0.7 ? 0 : 1,
        at: new Date(base + Math.floor(rnd() * 40 * 60) * 60_000),
        faces: subjects.map((s) => ({ kind: s.kind, subjectId: s.id, age: 10 + Math.floor(rnd() * 60), gender: rnd() < 0.5 ? 'male' : 'female' })),
      });
    }
    // Eight workers at once, some without the up-front lock (they may deadlock and retry).
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async (_, w) => {
      while (next < captures.length) {
        const c = captures[next++];
        await withRetry(() => recordCapture(env.db, t, c.store, c.at, c.faces, { lockFirst: w % 2 === 0 }));
      }
    }));
    // Visits equal a one-shot sessionisation of each subject's sightings.
    for (const [store, storeId] of t.storeIds.entries()) {
      for (const s of [...people, ...visitors]) {
        const pts = captures.filter((c) => c.store === store && c.faces.some((f) => f.subjectId === s)).map((c) => ({ seenAt: c.at.getTime(), age: null, gender: null }));
        const expected = sessionise(pts, 30 * 60_000).map((v) => [new Date(v.startedAt).toISOString(), new Date(v.endedAt).toISOString(), v.sightings]);
        expect(await visitSpans(env.db, storeId, s)).toEqual(expected);
      }
    }
    const incremental = await snapshot(t.storeIds);
    expect(incremental.roll.length).toBeGreaterThan(0);
    // Rebuild on top, then rebuild from nothing: both equal the incremental result.
    for (const storeId of t.storeIds) {
      await rebuildAnalytics(env.db, { storeId, from: new Date(base - 86_400_000), to: new Date(base + 3 * 86_400_000), visitGapMinutes: 30 });
    }
    expect(await snapshot(t.storeIds)).toEqual(incremental);
    await env.db('analytics_rollups').whereIn('store_id', t.storeIds).delete();
    await env.db('visits').whereIn('store_id', t.storeIds).delete();
    await env.db('analytics_store_subjects').whereIn('store_id', t.storeIds).delete();
    await env.db('analytics_subjects').where('merchant_id', t.merchantId).update({ first_visit_at: null, first_visit_store_id: null, last_visit_at: null });
    for (const storeId of t.storeIds) {
      await rebuildAnalytics(env.db, { storeId, from: new Date(base - 86_400_000), to: new Date(base + 3 * 86_400_000), visitGapMinutes: 30 });
    }
    expect(await snapshot(t.storeIds)).toEqual(incremental);
  });

  it('captures of different subjects saved at once all land: deadlocks re-run the transaction', async () => {
    const t = await seedTenant(env.db, 'no-deadlock', ['UTC']);
    const subjects: { kind: 'member' | 'visitor'; id: string }[] = [];
    for (let i = 0; i < 4; i++) subjects.push({ kind: 'member', id: await seedPerson(env.db, t.merchantId) });
    for (let i = 0; i < 20; i++) subjects.push({ kind: 'visitor', id: await seedVisitor(env.db, t.merchantId) });
    const rnd = seededRandom(7);
    const base = Date.parse('2026-06-01T10:00:00Z');
    // One subject per capture; the subjects' visits interleave within two hours.
    const captures: { id: string; subject: (typeof subjects)[number] }[] = [];
    for (let i = 0; i < 240; i++) {
      const id = randomUUID();
      await env.db('captures').insert({
        id, batch_id: t.batchIds[0], device_id: t.deviceIds[0], store_id: t.storeIds[0], merchant_id: t.merchantId,
        sha256: id.replace(/-/g, '').padEnd(64, '0'), blob_key: `b/${id}`, bytes: 1, status: 'processing', run: 0,
        captured_at: new Date(base + Math.floor(rnd() * 120) * 60_000), captured_at_source: 'device', received_at: new Date(),
      });
      captures.push({ id, subject: subjects[i % subjects.length] });
    }
    const perks = { points: 5, cooldownMinutes: 10 };
    // The aggregate stage's transaction: a retried transaction runs all of it again.
    const results = new ResultsService(env.db, new CaptureLifecycle(env.db), { visitGapMinutes: 30, perks });
    const face = {
      box: { x: 0, y: 0, width: 10, height: 10 }, score: 0.99, landmarks: [[1, 1], [2, 1], [1.5, 2], [1, 3], [2, 3]] satisfies Landmarks5,
      age: 30, gender: 'female' as const, genderConfidence: 0.9, quality: { eyeDistance: 1, sharpness: 1, yaw: 0 },
    };
    let next = 0;
    await Promise.all(Array.from({ length: 6 }, async () => {
      while (next < captures.length) {
        const { id, subject } = captures[next++];
        const match = { faceIndex: 0, kind: subject.kind, subjectId: subject.id, similarity: 0.9, newVisitor: false };
        expect((await results.save({ captureId: id, run: 0, faces: [face], matches: [match] }))?.alreadySaved).toBe(false);
      }
    }));
    const done = await env.db('captures').where({ store_id: t.storeIds[0], status: 'done' }).count({ n: '*' }).first();
    expect(Number(done?.n)).toBe(captures.length);
    // No retry left a trace: visits and rollups equal a rebuild from the sightings, and the perks
    // hold whatever the order: awards at least 10 minutes apart, every sighting within 10 minutes
    // of an award, one award per capture at most, and the balance equal to the awards.
    const incremental = await snapshot(t.storeIds);
    await rebuildAnalytics(env.db, { storeId: t.storeIds[0], from: new Date(base - 86_400_000), to: new Date(base + 86_400_000), visitGapMinutes: 30 });
    expect(await snapshot(t.storeIds)).toEqual(incremental);
    const cooldown = perks.cooldownMinutes * 60_000;
    for (const member of subjects.filter((s) => s.kind === 'member')) {
      const awards = await env.db('perk_awards').where({ person_id: member.id }).orderBy('awarded_at').select('awarded_at', 'capture_id');
      const at = awards.map((a: { awarded_at: Date }) => a.awarded_at.getTime());
      expect(at.length).toBeGreaterThan(0);
      for (let i = 1; i < at.length; i++) expect(at[i] - at[i - 1]).toBeGreaterThanOrEqual(cooldown);
      expect(new Set(awards.map((a: { capture_id: string }) => a.capture_id)).size).toBe(awards.length);
      const ids = captures.filter((c) => c.subject === member).map((c) => c.id);
      const seen = (await env.db('captures').whereIn('id', ids).select('captured_at')).map((r: { captured_at: Date }) => r.captured_at.getTime());
      for (const time of seen) expect(at.some((award) => Math.abs(award - time) < cooldown)).toBe(true);
      expect((await env.db('people').where({ id: member.id }).first('points')).points).toBe(awards.length * perks.points);
    }
  });

  it('a random history of late uploads, reprocesses with changed matches, erasures, purges, merges, links, rejections and undos: visits, rollups, spans and span days equal a rebuild', async () => {
    const t = await seedTenant(env.db, 'history', ['Europe/Paris', 'America/New_York']);
    const people: string[] = [];
    const visitors: string[] = [];
    for (let i = 0; i < 3; i++) people.push(await seedPerson(env.db, t.merchantId));
    for (let i = 0; i < 5; i++) visitors.push(await seedVisitor(env.db, t.merchantId));
    const subjects = [...people.map((id) => ({ kind: 'member' as const, id })), ...visitors.map((id) => ({ kind: 'visitor' as const, id }))];
    const rnd = seededRandom(17);
    const base = Date.parse('2026-03-28T20:00:00Z'); // spans the Paris DST change (Mar 29)
    const results = new ResultsService(env.db, new CaptureLifecycle(env.db), { visitGapMinutes: 30, perks: { points: 5, cooldownMinutes: 10 } });
    const lifecycle = new CaptureLifecycle(env.db);
    const face = (age: number) => ({
      box: { x: 0, y: 0, width: 10, height: 10 }, score: 0.99, landmarks: [[1, 1], [2, 1], [1.5, 2], [1, 3], [2, 3]] satisfies Landmarks5,
      age, gender: 'female' as const, genderConfidence: 0.9, quality: { eyeDistance: 1, sharpness: 1, yaw: 0 },
    });
    /** One run of a capture's aggregate step with 1-3 random subjects (a reprocess may match others: a new pack). */
    const save = (captureId: string, run: number) => {
      const picked = [...new Set(Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => subjects[Math.floor(rnd() * subjects.length)]))];
      const matches = picked.map((s, faceIndex) => ({ faceIndex, kind: s.kind, subjectId: s.id, similarity: 0.9, newVisitor: false }));
      return withRetry(() => results.save({ captureId, run, faces: picked.map(() => face(15 + Math.floor(rnd() * 50))), matches }));
    };
    const uploaded: { id: string; run: number }[] = [];
    const upload = async () => {
      const id = randomUUID();
      const store = rnd() < 0.6 ? 0 : 1;
      // captured_at anywhere in three days, whatever the order of arrival: late and out-of-order uploads
      await env.db('captures').insert({
        id, batch_id: t.batchIds[store], device_id: t.deviceIds[store], store_id: t.storeIds[store], merchant_id: t.merchantId,
        sha256: id.replace(/-/g, '').padEnd(64, '0'), blob_key: `b/${id}`, bytes: 1, status: 'processing', run: 0,
        captured_at: new Date(base + Math.floor(rnd() * 3 * 24 * 60) * 60_000), captured_at_source: 'device', received_at: new Date(),
      });
      await save(id, 0);
      uploaded.push({ id, run: 0 });
    };
    const reprocess = async () => {
      const capture = uploaded[Math.floor(rnd() * uploaded.length)];
      const run = await lifecycle.restart(capture, { onlyIfOpen: false });
      if (run === undefined) return;
      capture.run = run;
      await save(capture.id, run);
    };
    const gallery = { deleteSubject: async () => {} } as unknown as Parameters<typeof purgeStaleVisitors>[0]['gallery'];
    const blobs = openBlobStore(env.config);
    const erase = async () => {
      const person = people.shift();
      if (person) await deletePersonRows(env.db, person);
    };
    const purge = async () => {
      const visitor = visitors.shift();
      if (!visitor) return;
      await env.db('visitors').where({ id: visitor }).update({ last_seen_at: new Date(Date.now() - 400 * 86_400_000) });
      await purgeStaleVisitors({ db: env.db, blobs, gallery }, 365);
    };
    /** Some or all sightings of one subject go to another (merge, link, reject); `undo` moves the last such move's back. */
    const moves: { faceIds: string[]; from: Subject; to: Subject }[] = [];
    let moved = 0;
    const moveSightings = (faceIds: string[], to: Subject, from: Subject) => withRetry(() => env.db.transaction(async (trx) => {
      const { existing } = await lockSubjects(trx, [from, to].map((s) => ({ merchantId: t.merchantId, subjectKind: s.kind, subjectId: s.id })));
      if (!existing.has(to.id)) return; // erased or purged meanwhile: the services refuse such a move
      await reassignSightings(trx, { merchantId: t.merchantId, faceIds, to }, { visitGapMinutes: 30 });
    }));
    const move = async () => {
      const from = subjects[Math.floor(rnd() * subjects.length)];
      const to = subjects[Math.floor(rnd() * subjects.length)];
      if (from.id === to.id) return;
      const rows: { face_id: string }[] = await env.db('sightings').where({ merchant_id: t.merchantId, subject_id: from.id }).select('face_id');
      const faceIds = rows.map((r) => r.face_id).filter(() => rnd() < 0.7);
      await moveSightings(faceIds, to, from);
      moves.push({ faceIds, from, to });
      moved += faceIds.length;
    };
    const undo = async () => {
      const last = moves.pop();
      if (last) await moveSightings(last.faceIds, last.from, last.to);
    };
    for (let i = 0; i < 20; i++) await upload();
    const operations = Array.from({ length: 200 }, () => {
      const r = rnd();
      return r < 0.5 ? upload : r < 0.75 ? reprocess : r < 0.8 ? erase : r < 0.85 ? purge : r < 0.95 ? move : undo;
    });
    let next = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next < operations.length) await operations[next++]();
    }));
    expect(people.length).toBeLessThan(3); // at least one erasure ran
    expect(visitors.length).toBeLessThan(5); // at least one purge ran
    expect(moved).toBeGreaterThan(0);

    const incremental = await snapshot(t.storeIds);
    expect(incremental.spans.length).toBeGreaterThan(0);
    expect(incremental.spanDays.length).toBeGreaterThan(0);
    expect(incremental.merchantSpanDays.length).toBeGreaterThan(0);
    const range = { from: new Date(base - 86_400_000), to: new Date(base + 4 * 86_400_000), visitGapMinutes: 30 };
    for (const storeId of t.storeIds) await rebuildAnalytics(env.db, { storeId, ...range });
    expect(await snapshot(t.storeIds)).toEqual(incremental);
    await env.db('analytics_rollups').whereIn('store_id', t.storeIds).delete();
    await env.db('visits').whereIn('store_id', t.storeIds).delete();
    await env.db('analytics_store_subjects').whereIn('store_id', t.storeIds).delete();
    await env.db('analytics_subjects').where('merchant_id', t.merchantId).update({ first_visit_at: null, first_visit_store_id: null, last_visit_at: null });
    for (const storeId of t.storeIds) await rebuildAnalytics(env.db, { storeId, ...range });
    expect(await snapshot(t.storeIds)).toEqual(incremental);
  });

  it('reassigning sightings joins two subjects\' visits closer than the gap into one, and moving them back restores every row', async () => {
    const t = await seedTenant(env.db, 'reassign', ['UTC']);
    const [a, b] = [await seedVisitor(env.db, t.merchantId), await seedVisitor(env.db, t.merchantId)];
    await recordCapture(env.db, t, 0, at('2026-06-01T10:00:00Z'), [{ kind: 'visitor', subjectId: a, age: 30, gender: 'male' }]);
    await recordCapture(env.db, t, 0, at('2026-06-01T10:20:00Z'), [{ kind: 'visitor', subjectId: b, age: 30, gender: 'male' }]);
    await recordCapture(env.db, t, 0, at('2026-06-02T09:00:00Z'), [{ kind: 'visitor', subjectId: b, age: 30, gender: 'male' }]);
    const before = await snapshot(t.storeIds);
    const faceIds = (await env.db('sightings').where({ subject_id: b }).select('face_id')).map((r: { face_id: string }) => r.face_id);
    const move = (to: string) => env.db.transaction(async (trx) => {
      await lockSubjects(trx, [a, b].map((subjectId) => ({ merchantId: t.merchantId, subjectKind: 'visitor' as const, subjectId })));
      await reassignSightings(trx, { merchantId: t.merchantId, faceIds, to: { kind: 'visitor', id: to } }, { visitGapMinutes: 30 });
    });
    await move(a);
    expect(await visitSpans(env.db, t.storeIds[0], a)).toEqual([
      ['2026-06-01T10:00:00.000Z', '2026-06-01T10:20:00.000Z', 2],
      ['2026-06-02T09:00:00.000Z', '2026-06-02T09:00:00.000Z', 1],
    ]);
    expect(await visitSpans(env.db, t.storeIds[0], b)).toEqual([]);
    expect(pick(await rollups(env.db, t.storeIds[0], 'day'), 'visits', 'unique_subjects', 'new_visitors', 'returning_visitors')).toEqual([
      { bucket_start: '2026-06-01T00:00:00.000Z', visits: 1, unique_subjects: 1, new_visitors: 1, returning_visitors: 0 },
      { bucket_start: '2026-06-02T00:00:00.000Z', visits: 1, unique_subjects: 1, new_visitors: 0, returning_visitors: 1 },
    ]);
    await move(b);
    expect(await snapshot(t.storeIds)).toEqual(before);
  });

  it('retracting the last sighting of a visit shortens the visit', async () => {
    const t = await seedTenant(env.db, 'retract-last', ['UTC']);
    const v = await seedVisitor(env.db, t.merchantId);
    const face = { kind: 'visitor' as const, subjectId: v, age: 30, gender: 'female' as const };
    await recordCapture(env.db, t, 0, at('2026-05-01T10:00:00Z'), [face]);
    await recordCapture(env.db, t, 0, at('2026-05-01T10:20:00Z'), [face]);
    const last = await recordCapture(env.db, t, 0, at('2026-05-01T10:40:00Z'), [face]);
    await env.db.transaction(async (trx) => {
      await retractCaptureSightings(trx, last.captureId, { visitGapMinutes: 30 });
      await trx('faces').where({ capture_id: last.captureId }).delete();
    });
    expect(await visitSpans(env.db, t.storeIds[0], v)).toEqual([['2026-05-01T10:00:00.000Z', '2026-05-01T10:20:00.000Z', 2]]);
    expect(pick(await rollups(env.db, t.storeIds[0], 'hour'), 'visits', 'sightings', 'duration_ms_sum')).toEqual([
      { bucket_start: '2026-05-01T10:00:00.000Z', visits: 1, sightings: 2, duration_ms_sum: 20 * 60_000 },
    ]);
  });

  it('retracting a reprocessed capture splits or removes visits and moves the first visit later', async () => {
    const t = await seedTenant(env.db, 'retract', ['UTC', 'UTC']);
    const v = await seedVisitor(env.db, t.merchantId);
    const face = { kind: 'visitor' as const, subjectId: v, age: 30, gender: 'female' as const };
    const c1 = await recordCapture(env.db, t, 0, at('2026-05-01T10:00:00Z'), [face]);
    const c2 = await recordCapture(env.db, t, 0, at('2026-05-01T10:20:00Z'), [face]);
    await recordCapture(env.db, t, 0, at('2026-05-01T10:40:00Z'), [face]);
    await recordCapture(env.db, t, 1, at('2026-05-02T09:00:00Z'), [face]);
    const retract = (captureId: string) => env.db.transaction(async (trx) => {
      await retractCaptureSightings(trx, captureId, { visitGapMinutes: 30 });
      await trx('faces').where({ capture_id: captureId }).delete(); // cascades to sightings, as a reprocess does
    });
    await retract(c2.captureId);
    expect(await visitSpans(env.db, t.storeIds[0], v)).toEqual([
      ['2026-05-01T10:00:00.000Z', '2026-05-01T10:00:00.000Z', 1],
      ['2026-05-01T10:40:00.000Z', '2026-05-01T10:40:00.000Z', 1],
    ]);
    const afterSplit = await snapshot(t.storeIds);
    for (const storeId of t.storeIds) await rebuildAnalytics(env.db, { storeId, from: at('2026-04-01T00:00:00Z'), to: at('2026-06-01T00:00:00Z'), visitGapMinutes: 30 });
    expect(await snapshot(t.storeIds)).toEqual(afterSplit);
    await retract(c1.captureId);
    const row = await env.db('analytics_subjects').where({ subject_id: v }).first();
    expect(row.first_visit_at.toISOString()).toBe('2026-05-01T10:40:00.000Z');
    const afterMove = await snapshot(t.storeIds);
    expect(pick(await rollups(env.db, t.storeIds[1], 'day'), 'visits', 'new_visitors', 'returning_visitors')).toEqual([
      { bucket_start: '2026-05-02T00:00:00.000Z', visits: 1, new_visitors: 0, returning_visitors: 1 },
    ]);
    for (const storeId of t.storeIds) await rebuildAnalytics(env.db, { storeId, from: at('2026-04-01T00:00:00Z'), to: at('2026-06-01T00:00:00Z'), visitGapMinutes: 30 });
    expect(await snapshot(t.storeIds)).toEqual(afterMove);
  });
});

/**
 * Rollups written out by hand (issue 18), not compared with sessionise or rebuildAnalytics output:
 * every metric of every non-empty bucket, after the incremental path and again after a rebuild.
 */
describe('rollups against hand-written expectations', () => {
  const METRICS = [
    'visits', 'unique_subjects', 'member_visits', 'visitor_visits', 'new_visitors', 'returning_visitors', 'sightings',
    'male_visits', 'female_visits', 'unknown_gender_visits',
    'age_0_17', 'age_18_24', 'age_25_34', 'age_35_44', 'age_45_54', 'age_55_64', 'age_65_plus', 'age_unknown', 'duration_ms_sum',
  ] as const;
  type Expected = { bucket_start: string; local_date: string; local_hour?: number } & Partial<Record<(typeof METRICS)[number], number>>;
  /** A bucket's full row: the metrics given, every other one 0. */
  const row = (expected: Expected) => ({ ...Object.fromEntries(METRICS.map((m) => [m, 0])), ...expected });

  async function actual(storeId: string, granularity: 'hour' | 'day') {
    return ((await rollups(env.db, storeId, granularity)) as Record<string, unknown>[])
      .filter((r) => Number(r.visits) > 0)
      .map((r) => ({
        bucket_start: r.bucket_start,
        local_date: r.local_date,
        ...(granularity === 'hour' ? { local_hour: r.local_hour } : {}),
        ...Object.fromEntries(METRICS.map((m) => [m, Number(r[m])])),
      }));
  }

  async function expectRollups(storeId: string, hours: Expected[], days: Expected[]) {
    expect(await actual(storeId, 'hour')).toEqual(hours.map(row));
    expect(await actual(storeId, 'day')).toEqual(days.map(row));
  }

  const rebuild = (storeId: string) =>
    rebuildAnalytics(env.db, { storeId, from: at('2026-01-01T00:00:00Z'), to: at('2027-01-01T00:00:00Z'), visitGapMinutes: 30 });

  it('a visit across the autumn DST change (01:50 EDT to 01:10 EST) is one 20-minute visit in its first 01:00 hour', async () => {
    const t = await seedTenant(env.db, 'dst-fall', ['America/New_York']);
    const v = await seedVisitor(env.db, t.merchantId);
    const face = { kind: 'visitor' as const, subjectId: v, age: 40, gender: 'female' as const };
    await recordCapture(env.db, t, 0, at('2026-11-01T05:50:00Z'), [face]); // 01:50 EDT
    await recordCapture(env.db, t, 0, at('2026-11-01T06:10:00Z'), [face]); // 01:10 EST: 20 min later, 40 min earlier on the wall clock

    expect(await visitSpans(env.db, t.storeIds[0], v)).toEqual([['2026-11-01T05:50:00.000Z', '2026-11-01T06:10:00.000Z', 2]]);
    const metrics = { visits: 1, unique_subjects: 1, visitor_visits: 1, new_visitors: 1, sightings: 2, female_visits: 1, age_35_44: 1, duration_ms_sum: 20 * 60_000 };
    const hours = [{ bucket_start: '2026-11-01T05:00:00.000Z', local_date: '2026-11-01', local_hour: 1, ...metrics }];
    // The local day starts at midnight EDT (04:00 UTC).
    const days = [{ bucket_start: '2026-11-01T04:00:00.000Z', local_date: '2026-11-01', ...metrics }];
    await expectRollups(t.storeIds[0], hours, days);
    await rebuild(t.storeIds[0]);
    await expectRollups(t.storeIds[0], hours, days);
  });

  it('a visit across the spring DST change (01:50 EST to 03:10 EDT) lasts 20 minutes, not the 80 of the wall clock', async () => {
    const t = await seedTenant(env.db, 'dst-spring', ['America/New_York']);
    const m = await seedPerson(env.db, t.merchantId);
    const face = { kind: 'member' as const, subjectId: m };
    await recordCapture(env.db, t, 0, at('2026-03-08T06:50:00Z'), [face]); // 01:50 EST
    await recordCapture(env.db, t, 0, at('2026-03-08T07:10:00Z'), [face]); // 03:10 EDT

    expect(await visitSpans(env.db, t.storeIds[0], m)).toEqual([['2026-03-08T06:50:00.000Z', '2026-03-08T07:10:00.000Z', 2]]);
    // A member: no new/returning visitor counts; no age or gender given.
    const metrics = { visits: 1, unique_subjects: 1, member_visits: 1, sightings: 2, unknown_gender_visits: 1, age_unknown: 1, duration_ms_sum: 20 * 60_000 };
    const hours = [{ bucket_start: '2026-03-08T06:00:00.000Z', local_date: '2026-03-08', local_hour: 1, ...metrics }];
    const days = [{ bucket_start: '2026-03-08T05:00:00.000Z', local_date: '2026-03-08', ...metrics }];
    await expectRollups(t.storeIds[0], hours, days);
    await rebuild(t.storeIds[0]);
    await expectRollups(t.storeIds[0], hours, days);
  });

  it('a late upload between two visits of different hours merges them into one visit of the first hour', async () => {
    const t = await seedTenant(env.db, 'late-merge', ['Europe/Paris']);
    const v = await seedVisitor(env.db, t.merchantId);
    const face = { kind: 'visitor' as const, subjectId: v, age: 22, gender: 'male' as const };
    const storeId = t.storeIds[0];
    await recordCapture(env.db, t, 0, at('2026-02-10T10:50:00Z'), [face]); // 11:50 in Paris
    await recordCapture(env.db, t, 0, at('2026-02-10T11:40:00Z'), [face]); // 50 min later: a second visit

    const one = { visits: 1, unique_subjects: 1, visitor_visits: 1, sightings: 1, male_visits: 1, age_18_24: 1 };
    await expectRollups(
      storeId,
      [
        { bucket_start: '2026-02-10T10:00:00.000Z', local_date: '2026-02-10', local_hour: 11, ...one, new_visitors: 1 },
        // First seen in an earlier hour: returning in this one.
        { bucket_start: '2026-02-10T11:00:00.000Z', local_date: '2026-02-10', local_hour: 12, ...one, returning_visitors: 1 },
      ],
      [{ bucket_start: '2026-02-09T23:00:00.000Z', local_date: '2026-02-10', visits: 2, unique_subjects: 1, visitor_visits: 2, new_visitors: 1, sightings: 2, male_visits: 2, age_18_24: 2 }],
    );

    // The robot was offline: a sighting at 11:15 arrives last, 25 min from each.
    await recordCapture(env.db, t, 0, at('2026-02-10T11:15:00Z'), [face]);
    expect(await visitSpans(env.db, storeId, v)).toEqual([['2026-02-10T10:50:00.000Z', '2026-02-10T11:40:00.000Z', 3]]);
    const merged = { visits: 1, unique_subjects: 1, visitor_visits: 1, new_visitors: 1, sightings: 3, male_visits: 1, age_18_24: 1, duration_ms_sum: 50 * 60_000 };
    const hours = [{ bucket_start: '2026-02-10T10:00:00.000Z', local_date: '2026-02-10', local_hour: 11, ...merged }];
    const days = [{ bucket_start: '2026-02-09T23:00:00.000Z', local_date: '2026-02-10', ...merged }];
    await expectRollups(storeId, hours, days);
    await rebuild(storeId);
    await expectRollups(storeId, hours, days);
  });
});
