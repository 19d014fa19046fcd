/**
 * Recomputes visits and rollups of one store from the `sightings` table (the source of truth).
 *
 * For every subject seen at the store in [from - gap, to + gap) the subject's visits at that
 * store are re-sessionised from all of its sightings there, its first visit at the merchant is
 * recomputed from visits, its spans (spans.ts) likewise, then the store's and the merchant's
 * span-day counts from all their spans, and then every affected bucket — the whole [from, to) range at this store plus
 * any bucket elsewhere whose visits or new/returning status changed — is recomputed from visits by summing the same per-subject contributions the incremental path uses. On data
 * the incremental path produced, this changes nothing (tested); after a gap change, a bug, or
 * sightings removed by a reprocessed capture it repairs visits and rollups.
 *
 * Safe to run beside live workers: subjects are locked like the incremental path does, rollup
 * ranges are replaced in one transaction with locking reads, and deadlocks are retried.
 */
import type { Knex } from 'knex';
import type { FirstVisit, SubjectKind } from './rollup.js';
import { lockAnalyticsSubjects } from './record.js';
import { sessionise, type VisitAgg } from './sessionise.js';
import { recountMerchantSpanDays, recountSpanDays, refreshSpans } from './spans.js';
import { retryOnLockConflict } from '../../storage/transactions.js';
import {
  bucketMetrics, bumpStoreVersions, earlierFirst, groupBySubject, loadStores, rollupRow, sameFirst, VISIT_COLUMNS, visitFromRow,
  visitsWithFirstVisit, visitToRow, type StoreInfo, type SubjectVisits,
} from './store.js';

export type RebuildOptions = { storeId: string; from: Date; to: Date; visitGapMinutes: number; chunkSize?: number };
export type RebuildResult = { subjects: number; visitsDeleted: number; visitsInserted: number; days: number };

/** Rebuilds of different stores (and live workers) may still conflict: re-run, up to 25 times. */
const retrying = <T>(transaction: () => Promise<T>) => retryOnLockConflict(transaction, 25, (attempt) => 20 * attempt + Math.random() * 50);

const sameVisit = (a: VisitAgg, b: VisitAgg) =>
  a.startedAt === b.startedAt && a.endedAt === b.endedAt && a.sightings === b.sightings && a.ageMilliSum === b.ageMilliSum
  && a.ageCount === b.ageCount && a.maleCount === b.maleCount && a.femaleCount === b.femaleCount;

export async function rebuildAnalytics(db: Knex, options: RebuildOptions): Promise<RebuildResult> {
  const gapMs = options.visitGapMinutes * 60_000;
  const stores = await loadStores(db, [options.storeId]);
  const store = stores.get(options.storeId);
  if (!store) throw new Error(`unknown store ${options.storeId}`);
  const from = options.from.getTime();
  const to = options.to.getTime();
  if (!(from < to)) throw new Error('rebuild: from must be before to');

  const subjectRows: { subject_id: string; subject_kind: SubjectKind }[] = await db
    .select('subject_id', 'subject_kind')
    .from(
      db('sightings').where('store_id', store.id).where('seen_at', '>=', new Date(from - gapMs)).where('seen_at', '<', new Date(to + gapMs))
        .distinct('subject_id', 'subject_kind')
        .union((q) => {
          q.from('visits').where('store_id', store.id).where('ended_at', '>=', new Date(from - gapMs)).where('started_at', '<', new Date(to + gapMs))
            .distinct('subject_id', 'subject_kind');
        })
        .as('s'),
    )
    .orderBy('subject_id');
  const subjects = [...new Map(subjectRows.map((r) => [r.subject_id, r])).values()];

  const result: RebuildResult = { subjects: subjects.length, visitsDeleted: 0, visitsInserted: 0, days: 0 };
  const extraDays = new Map<string, { storeId: string; start: number }>();
  const addDay = async (storeId: string, t: number) => {
    if (!stores.has(storeId)) for (const [id, info] of await loadStores(db, [storeId])) stores.set(id, info);
    const start = stores.get(storeId)!.zone.dayStart(t);
    extraDays.set(`${storeId}|${start}`, { storeId, start });
  };

  const chunkSize = options.chunkSize ?? 500;
  for (let i = 0; i < subjects.length; i += chunkSize) {
    const chunk = subjects.slice(i, i + chunkSize);
    const ids = chunk.map((s) => s.subject_id);
    const changedDays: [string, number][] = [];
    await retrying(() =>
      db.transaction(async (trx) => {
        changedDays.length = 0;
        const { firsts } = await lockAnalyticsSubjects(trx, chunk.map((s) => ({ merchantId: store.merchantId, subjectId: s.subject_id, subjectKind: s.subject_kind })));
        const sightingRows = await trx('sightings').where('store_id', store.id).whereIn('subject_id', ids)
          .orderBy(['subject_id', 'seen_at']).forShare().select('subject_id', 'seen_at', 'age', 'gender');
        const existingRows = await trx('visits').where('store_id', store.id).whereIn('subject_id', ids).forUpdate().select(VISIT_COLUMNS);
        const pointsBy = new Map<string, { seenAt: number; age: number | null; gender: 'male' | 'female' | null }[]>();
        for (const r of sightingRows) {
          const list = pointsBy.get(r.subject_id) ?? [];
          list.push({ seenAt: (r.seen_at as Date).getTime(), age: r.age === null ? null : Number(r.age), gender: r.gender });
          pointsBy.set(r.subject_id, list);
        }
        const existingBy = new Map<string, ReturnType<typeof visitFromRow>[]>();
        for (const r of existingRows) {
          const v = visitFromRow(r);
          existingBy.set(v.subjectId, [...(existingBy.get(v.subjectId) ?? []), v]);
        }
        const deletes: number[] = [];
        const inserts: ReturnType<typeof visitToRow>[] = [];
        for (const s of chunk) {
          const fresh = sessionise(pointsBy.get(s.subject_id) ?? [], gapMs);
          const old = existingBy.get(s.subject_id) ?? [];
          const oldByStart = new Map(old.map((v) => [v.startedAt, v]));
          const keep = new Set<number>();
          for (const v of fresh) {
            const match = oldByStart.get(v.startedAt);
            if (match && sameVisit(match, v)) keep.add(match.id);
            else {
              inserts.push(visitToRow(v, { storeId: store.id, merchantId: store.merchantId, subjectKind: s.subject_kind, subjectId: s.subject_id }));
              changedDays.push([store.id, v.startedAt]);
            }
          }
          for (const v of old) {
            if (!keep.has(v.id)) {
              deletes.push(v.id);
              changedDays.push([store.id, v.startedAt]);
            }
          }
        }
        for (let j = 0; j < deletes.length; j += 1000) await trx('visits').whereIn('id', deletes.slice(j, j + 1000)).delete();
        for (let j = 0; j < inserts.length; j += 1000) await trx('visits').insert(inserts.slice(j, j + 1000));
        result.visitsDeleted += deletes.length;
        result.visitsInserted += inserts.length;

        // First visit at the merchant, from visits (all stores).
        const firstRows = await trx('visits').where('merchant_id', store.merchantId).whereIn('subject_id', ids)
          .groupBy('subject_id').forShare().select('subject_id', trx.raw('MIN(started_at) as first_at'));
        const minAt = new Map<string, number>(firstRows.map((r: { subject_id: string; first_at: Date }) => [r.subject_id, r.first_at.getTime()]));
        const atFirst = minAt.size === 0 ? [] : await trx('visits').where('merchant_id', store.merchantId)
          .whereIn(['subject_id', 'started_at'], [...minAt].map(([id, at]) => [id, new Date(at)]))
          .select('subject_id', 'started_at', 'store_id');
        const newFirsts = new Map<string, FirstVisit>();
        for (const r of atFirst) {
          newFirsts.set(r.subject_id, earlierFirst(newFirsts.get(r.subject_id) ?? null, { at: (r.started_at as Date).getTime(), storeId: r.store_id }));
        }
        for (const s of chunk) {
          const oldFirst = firsts.get(`${store.merchantId}|${s.subject_id}`) ?? null;
          const newFirst = newFirsts.get(s.subject_id) ?? null;
          if (sameFirst(oldFirst, newFirst)) continue;
          await trx('analytics_subjects').where({ merchant_id: store.merchantId, subject_id: s.subject_id })
            .update({ first_visit_at: newFirst ? new Date(newFirst.at) : null, first_visit_store_id: newFirst?.storeId ?? null });
          if (s.subject_kind !== 'visitor') continue;
          for (const f of [oldFirst, newFirst]) if (f) changedDays.push([f.storeId, f.at]);
          const lo = Math.min(oldFirst?.at ?? Infinity, newFirst?.at ?? Infinity);
          const hi = Math.max(oldFirst?.at ?? -Infinity, newFirst?.at ?? -Infinity);
          const near = await trx('visits').where({ merchant_id: store.merchantId, subject_id: s.subject_id })
            .where('started_at', '>=', new Date(lo)).where('started_at', '<', new Date(hi + 27 * 3_600_000)).select('store_id', 'started_at');
          for (const r of near) changedDays.push([r.store_id, (r.started_at as Date).getTime()]);
        }
        await refreshSpans(trx, chunk.map((s) => ({ storeId: store.id, subjectId: s.subject_id, merchantId: store.merchantId })));
      }),
    );
    for (const [storeId, t] of changedDays) await addDay(storeId, t);
  }
  await retrying(() => db.transaction((trx) => recountSpanDays(trx, store.id)));
  await retrying(() => db.transaction((trx) => recountMerchantSpanDays(trx, store.merchantId)));

  // Rollups: the whole range at this store, then any other day touched.
  const rangeStart = store.zone.dayStart(from);
  let rangeEnd = store.zone.dayStart(to - 1);
  rangeEnd = store.zone.nextDay(rangeEnd);
  const monthMs = 31 * 86_400_000;
  for (let s = rangeStart; s < rangeEnd; ) {
    let e = store.zone.dayStart(Math.min(s + monthMs, rangeEnd - 1));
    if (e <= s) e = rangeEnd;
    if (rangeEnd - e < 86_400_000 * 2) e = rangeEnd;
    const chunkEnd = e;
    result.days += await retrying(() => db.transaction((trx) => recomputeDays(trx, store, s, chunkEnd)));
    s = chunkEnd;
  }
  for (const { storeId, start } of [...extraDays.values()].sort((a, b) => a.start - b.start)) {
    if (storeId === store.id && start >= rangeStart && start < rangeEnd) continue;
    const info = stores.get(storeId)!;
    result.days += await retrying(() => db.transaction((trx) => recomputeDays(trx, info, start, info.zone.nextDay(start))));
  }
  return result;
}

/** Replaces the rollup rows of whole days [start, end) (day boundaries) at a store with sums recomputed from visits. */
export async function recomputeDays(trx: Knex.Transaction, store: StoreInfo, start: number, end: number): Promise<number> {
  await bumpStoreVersions(trx, [store.id]);
  await trx('analytics_rollups').where('store_id', store.id)
    .where('bucket_start', '>=', new Date(start)).where('bucket_start', '<', new Date(end)).delete();
  const rows = await visitsWithFirstVisit(trx, store.id, start, end).orderBy('v.started_at').forShare();
  const byBucket = new Map<string, { granularity: 'hour' | 'day'; b: number; subjects: Map<string, SubjectVisits> }>();
  let day = start;
  let dayEnd = store.zone.nextDay(start);
  let hour = -1;
  let hourEnd = -1;
  for (const r of rows) {
    const v = visitFromRow(r);
    while (v.startedAt >= dayEnd) {
      day = dayEnd;
      dayEnd = store.zone.nextDay(day);
    }
    if (v.startedAt >= hourEnd || v.startedAt < hour) {
      hour = store.zone.hourStart(v.startedAt);
      hourEnd = store.zone.nextHour(hour);
    }
    for (const [granularity, b] of [['day', day], ['hour', hour]] as const) {
      const k = `${granularity}|${b}`;
      const bucket = byBucket.get(k) ?? { granularity, b, subjects: new Map<string, SubjectVisits>() };
      byBucket.set(k, bucket);
      groupBySubject(bucket.subjects, r, v);
    }
  }
  const out: ReturnType<typeof rollupRow>[] = [];
  for (const { granularity, b, subjects } of byBucket.values()) {
    const e = granularity === 'day' ? store.zone.nextDay(b) : store.zone.nextHour(b);
    out.push(rollupRow({ storeId: store.id, granularity, bucketStart: b }, bucketMetrics(subjects.values(), store.id, b, e), store.zone));
  }
  for (let j = 0; j < out.length; j += 500) await trx('analytics_rollups').insert(out.slice(j, j + 500));
  return Math.round((end - start) / 86_400_000);
}
