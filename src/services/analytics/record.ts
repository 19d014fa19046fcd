/**
 * The incremental path, called by the aggregate stage inside its results transaction.
 *
 * Concurrency: every change to a subject's visits happens while holding that subject's row in
 * `analytics_subjects` exclusively (INSERT … ON DUPLICATE KEY UPDATE, in sorted key order), and
 * every read of visits/first-visit is a locking (current) read, so two workers that see the same
 * subject at once are serialised and the second one sees what the first committed, whatever the
 * isolation level. Rollup rows are only ever changed by relative deltas (x = x + Δ), applied in
 * sorted key order, so concurrent workers touching the same hour never lose an update.
 */
import type { Knex } from 'knex';
import { contribution, addInto, zeroMetrics, bucketKeyString, type BucketKey, type FirstVisit, type Metrics, type SubjectKind } from './rollup.js';
import { applySightings, sessionise, type Gender, type SightingPoint, type VisitAgg } from './sessionise.js';
import {
  holdRollupDeltas, earlierFirst, firstFromRow, loadStores, sameFirst, VISIT_COLUMNS, visitFromRow, visitToRow,
  type StoreInfo, type VisitRow,
} from './store.js';
import { refreshSpans, subjectKey, type MerchantSpan, type StoreSubject } from './spans.js';
import { sendTogether, withHeldWrites, type HeldWrites } from '../../storage/transactions.js';

export type SightingInput = {
  storeId: string;
  merchantId: string;
  subjectKind: SubjectKind;
  subjectId: string;
  seenAt: Date;
  /** The sighting's face id: used to read its age and gender from `sightings` when not given. */
  faceId?: string;
  age?: number | null;
  gender?: Gender | null;
};

export type SubjectRef = { merchantId: string; subjectKind: SubjectKind; subjectId: string };

const MAX_LATE_FLIP_MS = 27 * 3_600_000; // a bucket (≤ 25 h day) containing the old first visit

/**
 * Takes the analytics lock of each subject (and, for callers that update them, the `people` and
 * `visitors` rows) in a fixed order. Call it first in the aggregate transaction, before inserting
 * faces/sightings: inserting a face takes a shared FK lock on its person/visitor row, and two
 * workers that both hold one and then want it exclusively deadlock. Idempotent within a transaction.
 * Resolves with the ids of the subjects whose person or visitor row exists (and is now locked; a
 * visitor merged or linked away does not count), and with their analytics rows as
 * lockAnalyticsSubjects reads them, for recordSightings: all in one round trip.
 */
export async function lockSubjects(trx: Knex.Transaction, subjects: SubjectRef[]): Promise<{ existing: Set<string>; analytics: LockedSubjects }> {
  const unique = new Map<string, SubjectRef>();
  for (const s of subjects) unique.set(subjectKey(s), s);
  const sorted = [...unique.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, s]) => s);
  const existing = new Set<string>();
  const analytics: LockedSubjects = { firsts: new Map(), spans: new Map() };
  if (sorted.length === 0) return { existing, analytics };
  const insert = trx('analytics_subjects')
    .insert(sorted.map((s) => ({ merchant_id: s.merchantId, subject_id: s.subjectId, subject_kind: s.subjectKind })))
    .toSQL()
    .toNative();
  const people = sorted.filter((s) => s.subjectKind === 'member').map((s) => s.subjectId).sort();
  const visitors = sorted.filter((s) => s.subjectKind === 'visitor').map((s) => s.subjectId).sort();
  const locks: Knex.QueryBuilder[] = [];
  if (people.length > 0) locks.push(trx('people').whereIn('id', people).orderBy('id').forUpdate().select('id'));
  // A visitor merged or linked away is gone for new sightings (its vectors may not have moved yet).
  if (visitors.length > 0) locks.push(trx('visitors').whereIn('id', visitors).whereNull('merged_into_id').orderBy('id').forUpdate().select('id'));
  const reads = analyticsSubjectReads(trx, sorted);
  const [, ...results] = await sendTogether(trx, [
    trx.raw(`${insert.sql} ON DUPLICATE KEY UPDATE subject_kind = subject_kind`, [...insert.bindings] as Knex.RawBinding[]),
    ...locks,
    ...reads,
  ]);
  for (const row of (results.slice(0, locks.length) as { id: string }[][]).flat()) existing.add(row.id);
  for (const rows of results.slice(locks.length) as AnalyticsSubjectRow[][]) addLockedRows(analytics, rows);
  return { existing, analytics };
}

/** The locked subjects' first visits and merchant spans (absent: no visit yet), by subjectKey. */
export type LockedSubjects = { firsts: Map<string, FirstVisit>; spans: Map<string, MerchantSpan> };

/**
 * Locks the subjects' `analytics_subjects` rows (in key order) and reads their first visits and
 * spans. The rows usually exist (lockSubjects made them earlier in the aggregate transaction):
 * they are read first, and only the missing ones inserted, then read.
 */
export async function lockAnalyticsSubjects(trx: Knex.Transaction, subjects: SubjectRef[]): Promise<LockedSubjects> {
  const sorted = [...subjects].sort((a, b) => (subjectKey(a) < subjectKey(b) ? -1 : 1));
  const locked: LockedSubjects = { firsts: new Map(), spans: new Map() };
  await readLockedSubjects(trx, sorted, locked);
  const missing = sorted.filter((s) => !locked.firsts.has(subjectKey(s)));
  if (missing.length === 0) return locked;
  const insert = trx('analytics_subjects')
    .insert(missing.map((s) => ({ merchant_id: s.merchantId, subject_id: s.subjectId, subject_kind: s.subjectKind })))
    .toSQL()
    .toNative();
  await trx.raw(`${insert.sql} ON DUPLICATE KEY UPDATE subject_kind = subject_kind`, [...insert.bindings] as Knex.RawBinding[]);
  await readLockedSubjects(trx, missing, locked);
  return locked;
}

type AnalyticsSubjectRow = {
  merchant_id: string;
  subject_id: string;
  subject_kind: SubjectKind;
  first_visit_at: Date | null;
  first_visit_store_id: string | null;
  last_visit_at: Date | null;
};

/** Reads that lock the `analytics_subjects` rows of those of the sorted subjects that have one, per merchant, 1000 at a time. */
function analyticsSubjectReads(trx: Knex.Transaction, sorted: SubjectRef[]): Knex.QueryBuilder[] {
  const reads: Knex.QueryBuilder[] = [];
  for (const merchantId of [...new Set(sorted.map((s) => s.merchantId))].sort()) {
    const ids = sorted.filter((s) => s.merchantId === merchantId).map((s) => s.subjectId);
    for (let i = 0; i < ids.length; i += 1000) {
      reads.push(
        trx('analytics_subjects')
          .where('merchant_id', merchantId)
          .whereIn('subject_id', ids.slice(i, i + 1000))
          .orderBy('subject_id')
          .forUpdate()
          .select('merchant_id', 'subject_id', 'subject_kind', 'first_visit_at', 'first_visit_store_id', 'last_visit_at'),
      );
    }
  }
  return reads;
}

function addLockedRows(locked: LockedSubjects, rows: AnalyticsSubjectRow[]): void {
  for (const row of rows) {
    const key = subjectKey({ merchantId: row.merchant_id, subjectId: row.subject_id });
    locked.firsts.set(key, firstFromRow(row));
    if (row.first_visit_at !== null) locked.spans.set(key, { kind: row.subject_kind, first: row.first_visit_at, last: row.last_visit_at });
  }
}

/** Reads (and locks) the `analytics_subjects` rows of those of the sorted subjects that have one, into `locked`. */
async function readLockedSubjects(trx: Knex.Transaction, sorted: SubjectRef[], locked: LockedSubjects): Promise<void> {
  for (const read of analyticsSubjectReads(trx, sorted)) addLockedRows(locked, await read);
}

async function resolveDemographics(trx: Knex.Transaction, sightings: SightingInput[]): Promise<SightingPoint[]> {
  const needFace = sightings.filter((s) => (s.age === undefined || s.gender === undefined) && s.faceId).map((s) => s.faceId!);
  const byFace = new Map<string, { age: number | null; gender: Gender | null }>();
  if (needFace.length > 0) {
    const rows = await trx('sightings').whereIn('face_id', needFace).select('face_id', 'age', 'gender');
    for (const r of rows) byFace.set(r.face_id, { age: r.age === null ? null : Number(r.age), gender: r.gender });
  }
  const out: SightingPoint[] = [];
  for (const s of sightings) {
    let found = s.faceId ? byFace.get(s.faceId) : undefined;
    if (!found && (s.age === undefined || s.gender === undefined) && !s.faceId) {
      const row = await trx('sightings')
        .where({ store_id: s.storeId, subject_id: s.subjectId, seen_at: s.seenAt })
        .first('age', 'gender');
      if (row) found = { age: row.age === null ? null : Number(row.age), gender: row.gender };
    }
    out.push({
      seenAt: s.seenAt.getTime(),
      age: s.age !== undefined ? s.age : (found?.age ?? null),
      gender: s.gender !== undefined ? s.gender : (found?.gender ?? null),
    });
  }
  return out;
}

/**
 * The subject's visits at a store that a sighting in [lo, hi] could touch (gap-widened), locked, in
 * order. Visits are disjoint, so only the last one starting before `lo` can reach into the window:
 * two index range reads, sent as one statement.
 */
async function loadNearbyVisits(trx: Knex.Transaction, storeId: string, subjectId: string, lo: number, hi: number): Promise<VisitRow[]> {
  const subjectVisits = () => trx('visits').where({ store_id: storeId, subject_id: subjectId }).forUpdate().select(VISIT_COLUMNS);
  const before = subjectVisits().where('started_at', '<', new Date(lo)).where('ended_at', '>', new Date(lo)).orderBy('started_at', 'desc').limit(1);
  const inside = subjectVisits().where('started_at', '>=', new Date(lo)).where('started_at', '<', new Date(hi));
  const rows = await trx.queryBuilder().unionAll([before, inside], true);
  return rows.map(visitFromRow).sort((a: VisitRow, b: VisitRow) => a.startedAt - b.startedAt);
}

/**
 * Adds the sightings to the subjects' visits, spans and rollups. From the aggregate stage, which
 * saves round trips: `locked`, the subjects' rows as lockSubjects read them earlier in the
 * transaction (else read here); `held`, where the writes are left for the caller to flush with its
 * own (else sent here).
 */
export async function recordSightings(
  trx: Knex.Transaction,
  sightings: SightingInput[],
  options: { visitGapMinutes: number },
  { locked, held: callersWrites }: { locked?: LockedSubjects; held?: HeldWrites } = {},
): Promise<void> {
  if (sightings.length === 0) return;
  const gapMs = options.visitGapMinutes * 60_000;
  const points = await resolveDemographics(trx, sightings);
  const stores = await loadStores(trx, sightings.map((s) => s.storeId));
  for (const s of sightings) if (!stores.has(s.storeId)) throw new Error(`recordSightings: unknown store ${s.storeId}`);

  const subjects = new Map<string, SubjectRef>();
  for (const s of sightings) subjects.set(subjectKey(s), { merchantId: s.merchantId, subjectKind: s.subjectKind, subjectId: s.subjectId });
  const { firsts, spans } = locked ?? (await lockAnalyticsSubjects(trx, [...subjects.values()]));

  const deltas = new Map<string, { key: BucketKey; metrics: Metrics }>();
  const writes = noVisitWrites();
  for (const [key, subject] of [...subjects.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const mine = sightings.map((s, i) => ({ s, p: points[i] })).filter(({ s }) => subjectKey(s) === key);
    const storeIds = [...new Set(mine.map(({ s }) => s.storeId))].sort();
    const removed: VisitRow[] = [];
    const added: (VisitAgg & { storeId: string })[] = [];
    // A subject with no first visit has no visits at all (a new visitor, a member never seen): nothing to read.
    const oldFirst = firsts.get(key) ?? null;
    for (const storeId of storeIds) {
      const pts = mine.filter(({ s }) => s.storeId === storeId).map(({ p }) => p);
      const lo = Math.min(...pts.map((p) => p.seenAt)) - gapMs;
      const hi = Math.max(...pts.map((p) => p.seenAt)) + gapMs;
      const existing = oldFirst === null ? [] : await loadNearbyVisits(trx, storeId, subject.subjectId, lo, hi);
      const change = applySightings(existing, pts, gapMs);
      removed.push(...change.removed);
      added.push(...change.added.map((v) => ({ ...v, storeId })));
    }

    let newFirst = oldFirst;
    for (const v of added) newFirst = earlierFirst(newFirst, { at: v.startedAt, storeId: v.storeId });
    await applySubjectChange(trx, subject, { removed, added, oldFirst, newFirst }, stores, deltas, writes);
  }
  await writeChanges(trx, { writes, deltas }, spans, stores, callersWrites);
}


type Deltas = Map<string, { key: BucketKey; metrics: Metrics }>;

/**
 * Replaces `removed` visits of one (locked) subject by `added`, moves its first visit from
 * `oldFirst` to `newFirst`, and accumulates the rollup deltas of every bucket whose contribution
 * from this subject changes: (after - before) per bucket.
 */
async function applySubjectChange(
  trx: Knex.Transaction,
  subject: SubjectRef,
  change: { removed: VisitRow[]; added: (VisitAgg & { storeId: string })[]; oldFirst: FirstVisit; newFirst: FirstVisit },
  stores: Map<string, StoreInfo>,
  deltas: Deltas,
  writes: VisitWrites,
): Promise<void> {
  const { removed, added, oldFirst, newFirst } = change;
  // Day buckets (per store) whose contribution from this subject may change. Every hour bucket
  // lies inside one day bucket, so reading the subject's visits per day covers the hours too.
  const days = new Map<string, { storeId: string; start: number }>();
  const addDay = async (storeId: string, t: number) => {
    await ensureStore(trx, stores, storeId);
    const start = stores.get(storeId)!.zone.dayStart(t);
    days.set(`${storeId}|${start}`, { storeId, start });
  };
  for (const v of removed) await addDay(v.storeId, v.startedAt);
  for (const v of added) await addDay(v.storeId, v.startedAt);
  if (!sameFirst(oldFirst, newFirst)) {
    for (const f of [oldFirst, newFirst]) if (f) await addDay(f.storeId, f.at);
    if (subject.subjectKind === 'visitor' && oldFirst && newFirst) {
      // Buckets (at any store) starting between the old and the new first visit flip between
      // "returning" and not; they hold a visit at most a day after the later of the two.
      const near = await trx('visits')
        .where({ merchant_id: subject.merchantId, subject_id: subject.subjectId })
        .where('started_at', '>=', new Date(Math.min(oldFirst.at, newFirst.at)))
        .where('started_at', '<', new Date(Math.max(oldFirst.at, newFirst.at) + MAX_LATE_FLIP_MS))
        .forUpdate()
        .select('store_id', 'started_at');
      for (const r of near) await addDay(r.store_id, (r.started_at as Date).getTime());
    }
  }

  // Before: the subject's visits in those days as stored; after: minus removed, plus added.
  const removedIds = new Set(removed.map((v) => v.id));
  for (const { storeId, start } of days.values()) {
    const z = stores.get(storeId)!.zone;
    const end = z.nextDay(start);
    const rows =
      oldFirst === null
        ? []
        : await trx('visits')
            .where({ store_id: storeId, subject_id: subject.subjectId })
            .where('started_at', '>=', new Date(start))
            .where('started_at', '<', new Date(end))
            .forUpdate()
            .select(VISIT_COLUMNS);
    const before: VisitAgg[] = rows.map(visitFromRow);
    const after: VisitAgg[] = [
      ...(before as VisitRow[]).filter((v) => !removedIds.has(v.id)),
      ...added.filter((v) => v.storeId === storeId && v.startedAt >= start && v.startedAt < end),
    ];
    const hourStarts = new Set<number>();
    for (const v of [...before, ...after]) hourStarts.add(z.hourStart(v.startedAt));
    const buckets: { granularity: 'hour' | 'day'; b: number; e: number }[] = [{ granularity: 'day', b: start, e: end }];
    for (const h of hourStarts) buckets.push({ granularity: 'hour', b: h, e: z.nextHour(h) });
    for (const { granularity, b, e } of buckets) {
      const inB = (v: VisitAgg) => v.startedAt >= b && v.startedAt < e;
      const delta = contribution(after.filter(inB), subject.subjectKind, newFirst, storeId, b, e);
      addInto(delta, contribution(before.filter(inB), subject.subjectKind, oldFirst, storeId, b, e), -1);
      const bucketKey: BucketKey = { storeId, granularity, bucketStart: b };
      const k = bucketKeyString(bucketKey);
      const entry = deltas.get(k) ?? { key: bucketKey, metrics: zeroMetrics() };
      addInto(entry.metrics, delta);
      deltas.set(k, entry);
    }
  }

  writes.removedVisitIds.push(...removed.map((v) => v.id));
  writes.addedVisits.push(...added.map((v) => visitToRow(v, { ...subject, storeId: v.storeId })));
  for (const v of [...removed, ...added]) writes.spans.push({ storeId: v.storeId, subjectId: subject.subjectId, merchantId: subject.merchantId });
  if (!sameFirst(oldFirst, newFirst)) {
    writes.firstVisits.push({
      merchant_id: subject.merchantId,
      subject_id: subject.subjectId,
      subject_kind: subject.subjectKind,
      first_visit_at: newFirst ? new Date(newFirst.at) : null,
      first_visit_store_id: newFirst?.storeId ?? null,
    });
  }
}

/**
 * The visit and first-visit rows every subject's change ends with, written once for the whole
 * transaction (writeChanges). Deferring them is safe: a subject's change reads only its own rows.
 */
type VisitWrites = {
  spans: StoreSubject[];
  removedVisitIds: number[];
  addedVisits: ReturnType<typeof visitToRow>[];
  firstVisits: { merchant_id: string; subject_id: string; subject_kind: SubjectKind; first_visit_at: Date | null; first_visit_store_id: string | null }[];
};

const noVisitWrites = (): VisitWrites => ({ spans: [], removedVisitIds: [], addedVisits: [], firstVisits: [] });

/**
 * Writes the subjects' changes: the visit and first-visit rows (they go out with the spans' first
 * read), the changed subjects' spans recomputed from them, and the rollup deltas. Into the caller's
 * held writes when given, else sent here.
 */
async function writeChanges(
  trx: Knex.Transaction,
  { writes, deltas }: { writes: VisitWrites; deltas: Deltas },
  spansBefore: Map<string, MerchantSpan>,
  stores: Map<string, StoreInfo>,
  callersWrites?: HeldWrites,
): Promise<void> {
  await withHeldWrites(trx, callersWrites, async (held) => {
    if (writes.removedVisitIds.length > 0) held.hold(trx('visits').whereIn('id', writes.removedVisitIds).delete());
    if (writes.addedVisits.length > 0) held.hold(trx('visits').insert(writes.addedVisits));
    if (writes.firstVisits.length > 0) {
      // The rows exist and are locked (lockAnalyticsSubjects): this only updates them.
      const insert = trx('analytics_subjects').insert(writes.firstVisits).toSQL().toNative();
      held.hold(
        trx.raw(
          `${insert.sql} ON DUPLICATE KEY UPDATE first_visit_at = VALUES(first_visit_at), first_visit_store_id = VALUES(first_visit_store_id)`,
          [...insert.bindings] as Knex.RawBinding[],
        ),
      );
    }
    await refreshSpans(trx, writes.spans, spansBefore, held);
    holdRollupDeltas(trx, deltas, stores, held);
  });
}

/**
 * Takes a capture's sightings back out of visits and rollups, before they are deleted (a
 * reprocessed capture replaces its faces). Call it in the results transaction before deleting the
 * capture's old faces/sightings.
 */
export async function retractCaptureSightings(trx: Knex.Transaction, captureId: string, options: { visitGapMinutes: number }): Promise<void> {
  const rows: { face_id: string }[] = await trx('sightings').where('capture_id', captureId).select('face_id');
  await retractSightings(trx, rows.map((r) => r.face_id), options);
}

/**
 * Takes these sightings (by face id) back out of visits and rollups; the rows themselves stay for
 * the caller to delete or reassign. Each visit that held one is re-sessionised from its remaining
 * sightings: it may shrink, split in two, or vanish; the first visit may move later.
 */
export async function retractSightings(trx: Knex.Transaction, faceIds: string[], options: { visitGapMinutes: number }): Promise<void> {
  const gapMs = options.visitGapMinutes * 60_000;
  if (faceIds.length === 0) return;
  const rows: { store_id: string; merchant_id: string; subject_kind: SubjectKind; subject_id: string; seen_at: Date }[] =
    await trx('sightings').whereIn('face_id', faceIds).select('store_id', 'merchant_id', 'subject_kind', 'subject_id', 'seen_at');
  if (rows.length === 0) return;
  const stores = await loadStores(trx, rows.map((r) => r.store_id));
  const subjects = new Map<string, SubjectRef>();
  for (const r of rows) subjects.set(subjectKey({ merchantId: r.merchant_id, subjectId: r.subject_id }), { merchantId: r.merchant_id, subjectKind: r.subject_kind, subjectId: r.subject_id });
  const { firsts, spans } = await lockAnalyticsSubjects(trx, [...subjects.values()]);
  const deltas: Deltas = new Map();
  const writes = noVisitWrites();
  for (const [key, subject] of [...subjects.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const removed: VisitRow[] = [];
    const added: (VisitAgg & { storeId: string })[] = [];
    for (const r of rows.filter((x) => x.subject_id === subject.subjectId && x.merchant_id === subject.merchantId)) {
      const t = r.seen_at.getTime();
      if (removed.some((v) => v.storeId === r.store_id && v.startedAt <= t && v.endedAt >= t)) continue;
      // From t - 1: a visit that ends exactly at t (this was its last sighting) must be found too.
      const visit = (await loadNearbyVisits(trx, r.store_id, subject.subjectId, t - 1, t + 1)).find((v) => v.startedAt <= t && v.endedAt >= t);
      if (!visit) continue; // never recorded in analytics
      const rest = await trx('sightings')
        .where({ store_id: r.store_id, subject_id: subject.subjectId })
        .where('seen_at', '>=', new Date(visit.startedAt))
        .where('seen_at', '<=', new Date(visit.endedAt))
        .whereNotIn('face_id', faceIds)
        .forShare()
        .select('seen_at', 'age', 'gender');
      removed.push(visit);
      const points = rest.map((x: { seen_at: Date; age: unknown; gender: Gender | null }) => ({
        seenAt: x.seen_at.getTime(), age: x.age === null ? null : Number(x.age), gender: x.gender,
      }));
      added.push(...sessionise(points, gapMs).map((v) => ({ ...v, storeId: r.store_id })));
    }
    if (removed.length === 0) continue;
    // The first visit may move later: the earliest remaining visit at the merchant.
    const oldFirst = firsts.get(key) ?? null;
    const removedIds = new Set(removed.map((v) => v.id));
    const earliest = await trx('visits')
      .where({ merchant_id: subject.merchantId, subject_id: subject.subjectId })
      .orderBy('started_at').orderBy('store_id')
      .limit(removed.length + 1)
      .forUpdate()
      .select('id', 'started_at', 'store_id');
    let newFirst: FirstVisit = null;
    for (const e of earliest) {
      if (removedIds.has(Number(e.id))) continue;
      newFirst = { at: (e.started_at as Date).getTime(), storeId: e.store_id };
      break;
    }
    for (const v of added) newFirst = earlierFirst(newFirst, { at: v.startedAt, storeId: v.storeId });
    await applySubjectChange(trx, subject, { removed, added, oldFirst, newFirst }, stores, deltas, writes);
  }
  await writeChanges(trx, { writes, deltas }, spans, stores);
}

async function ensureStore(trx: Knex.Transaction, stores: Map<string, StoreInfo>, storeId: string): Promise<void> {
  if (stores.has(storeId)) return;
  const more = await loadStores(trx, [storeId]);
  for (const [id, info] of more) stores.set(id, info);
}
