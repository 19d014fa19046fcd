/** Row mapping and small SQL helpers shared by the incremental path and the rebuild. */
import type { Knex } from 'knex';
import { addInto, contribution, METRICS, zeroMetrics, type BucketKey, type FirstVisit, type Metrics, type SubjectKind } from './rollup.js';
import type { VisitAgg } from './sessionise.js';
import { zone, type Zone } from './time.js';
import { writeTogether, type HeldWrites } from '../../storage/transactions.js';

export type VisitRow = VisitAgg & {
  id: number;
  storeId: string;
  merchantId: string;
  subjectKind: SubjectKind;
  subjectId: string;
};

export const VISIT_COLUMNS = [
  'id', 'store_id', 'merchant_id', 'subject_kind', 'subject_id', 'started_at', 'ended_at', 'sightings',
  'age_milli_sum', 'age_count', 'male_count', 'female_count',
] as const;

const ms = (value: unknown): number => (value instanceof Date ? value.getTime() : new Date(String(value)).getTime());

export function visitFromRow(row: Record<string, unknown>): VisitRow {
  return {
    id: Number(row.id),
    storeId: String(row.store_id),
    merchantId: String(row.merchant_id),
    subjectKind: row.subject_kind as SubjectKind,
    subjectId: String(row.subject_id),
    startedAt: ms(row.started_at),
    endedAt: ms(row.ended_at),
    sightings: Number(row.sightings),
    ageMilliSum: Number(row.age_milli_sum),
    ageCount: Number(row.age_count),
    maleCount: Number(row.male_count),
    femaleCount: Number(row.female_count),
  };
}

export function visitToRow(v: VisitAgg, ctx: { storeId: string; merchantId: string; subjectKind: SubjectKind; subjectId: string }) {
  return {
    store_id: ctx.storeId,
    merchant_id: ctx.merchantId,
    subject_kind: ctx.subjectKind,
    subject_id: ctx.subjectId,
    started_at: new Date(v.startedAt),
    ended_at: new Date(v.endedAt),
    sightings: v.sightings,
    age_milli_sum: v.ageMilliSum,
    age_count: v.ageCount,
    male_count: v.maleCount,
    female_count: v.femaleCount,
  };
}

export function firstFromRow(row: { first_visit_at: unknown; first_visit_store_id: unknown } | undefined): FirstVisit {
  if (!row || row.first_visit_at === null || row.first_visit_at === undefined) return null;
  return { at: ms(row.first_visit_at), storeId: String(row.first_visit_store_id) };
}

/** A store's visits starting in [from, to), each row with its subject's first visit at the merchant (first_visit_at, first_visit_store_id). */
export function visitsWithFirstVisit(db: Knex | Knex.Transaction, storeId: string, from: number, to: number): Knex.QueryBuilder {
  return db('visits as v')
    .leftJoin('analytics_subjects as a', function join() {
      this.on('a.merchant_id', '=', 'v.merchant_id').andOn('a.subject_id', '=', 'v.subject_id');
    })
    .where('v.store_id', storeId)
    .where('v.started_at', '>=', new Date(from))
    .where('v.started_at', '<', new Date(to))
    .select(...VISIT_COLUMNS.map((c) => `v.${c}`), 'a.first_visit_at', 'a.first_visit_store_id');
}

/** One subject's visits in a bucket, with what decides new vs returning. */
export type SubjectVisits = { kind: SubjectKind; first: FirstVisit; visits: VisitAgg[] };

/** Adds a visitsWithFirstVisit row to its subject's group. */
export function groupBySubject(subjects: Map<string, SubjectVisits>, row: Record<string, unknown>, visit: VisitRow = visitFromRow(row)): void {
  const group = subjects.get(visit.subjectId) ?? { kind: visit.subjectKind, first: firstFromRow(row as never), visits: [] };
  group.visits.push(visit);
  subjects.set(visit.subjectId, group);
}

/** A bucket's rollup metrics at a store: every subject's contribution, summed. */
export function bucketMetrics(subjects: Iterable<SubjectVisits>, storeId: string, bucketStart: number, bucketEnd: number): Metrics {
  const total = zeroMetrics();
  for (const { kind, first, visits } of subjects) addInto(total, contribution(visits, kind, first, storeId, bucketStart, bucketEnd));
  return total;
}

/** Earlier first visit wins; equal instants are ordered by store id so the choice is deterministic. */
export function earlierFirst(a: FirstVisit, b: FirstVisit): FirstVisit {
  if (!a) return b;
  if (!b) return a;
  if (a.at !== b.at) return a.at < b.at ? a : b;
  return a.storeId <= b.storeId ? a : b;
}

export const sameFirst = (a: FirstVisit, b: FirstVisit) =>
  (a === null && b === null) || (a !== null && b !== null && a.at === b.at && a.storeId === b.storeId);

export type StoreInfo = { id: string; merchantId: string; zone: Zone };

/**
 * A store's merchant and time zone never change once it is created (no route updates them), so a
 * process reads each store once: the aggregate stage would otherwise read its store per capture.
 */
const knownStores = new Map<string, StoreInfo>();
const KNOWN_STORES_MAX = 10_000;

export async function loadStores(db: Knex, ids: string[]): Promise<Map<string, StoreInfo>> {
  const unique = [...new Set(ids)];
  const found = new Map<string, StoreInfo>();
  for (const id of unique) if (knownStores.has(id)) found.set(id, knownStores.get(id)!);
  const unknown = unique.filter((id) => !found.has(id));
  const rows: { id: string; merchant_id: string; timezone: string }[] =
    unknown.length > 0 ? await db('stores').whereIn('id', unknown).select('id', 'merchant_id', 'timezone') : [];
  if (knownStores.size + rows.length > KNOWN_STORES_MAX) knownStores.clear();
  for (const row of rows) {
    const store = { id: row.id, merchantId: row.merchant_id, zone: zone(row.timezone) };
    knownStores.set(row.id, store);
    found.set(row.id, store);
  }
  return found;
}

/**
 * Bumps the read-cache version of each store (see migrations/…000005): call it in the transaction
 * that changes the stores' visits or rollups, before touching rollup rows, so every writer takes
 * version rows before rollup rows (in sorted order) and the two never deadlock each other.
 */
export async function bumpStoreVersions(trx: Knex.Transaction | Knex, storeIds: Iterable<string>): Promise<void> {
  await writeTogether(trx, storeVersionBumps(trx, storeIds));
}

function storeVersionBumps(trx: Knex.Transaction | Knex, storeIds: Iterable<string>): Knex.Raw[] {
  const ids = [...new Set(storeIds)].sort();
  if (ids.length === 0) return [];
  return [trx.raw(`INSERT INTO analytics_store_versions (store_id, version) VALUES ${ids.map(() => '(?, 1)').join(', ')} ON DUPLICATE KEY UPDATE version = version + 1`, ids)];
}

/**
 * Holds the writes that bump the stores' versions, apply rollup deltas in key order (a fixed lock
 * order across concurrent writers), then drop emptied rows.
 */
export function holdRollupDeltas(
  trx: Knex.Transaction,
  deltas: Map<string, { key: BucketKey; metrics: Metrics }>,
  stores: Map<string, StoreInfo>,
  held: HeldWrites,
): void {
  const entries = [...deltas.values()]
    .filter((d) => METRICS.some((m) => d.metrics[m] !== 0))
    .sort((a, b) =>
      a.key.storeId < b.key.storeId ? -1 : a.key.storeId > b.key.storeId ? 1
        : a.key.granularity < b.key.granularity ? -1 : a.key.granularity > b.key.granularity ? 1
          : a.key.bucketStart - b.key.bucketStart,
    );
  held.hold(...storeVersionBumps(trx, stores.keys()));
  if (entries.length === 0) return;
  const rows = entries.map(({ key, metrics }) => rollupRow(key, metrics, stores.get(key.storeId)!.zone));
  const updates = METRICS.map((m) => `\`${m}\` = \`${m}\` + VALUES(\`${m}\`)`).join(', ');
  const upsert = trx('analytics_rollups').insert(rows).toSQL().toNative();
  held.hold(trx.raw(`${upsert.sql} ON DUPLICATE KEY UPDATE ${updates}`, [...upsert.bindings] as Knex.RawBinding[]));
  // Only a shrinking bucket can become empty.
  for (const { key } of entries.filter(({ metrics }) => metrics.visits < 0)) {
    held.hold(trx('analytics_rollups').where({ store_id: key.storeId, granularity: key.granularity, bucket_start: new Date(key.bucketStart) }).where('visits', '<=', 0).delete());
  }
}

export function rollupRow(key: BucketKey, metrics: Metrics, z: Zone) {
  const local = z.local(key.bucketStart);
  return {
    store_id: key.storeId,
    granularity: key.granularity,
    bucket_start: new Date(key.bucketStart),
    local_date: local.date,
    local_hour: key.granularity === 'hour' ? local.hour : 0,
    local_weekday: local.weekday,
    ...metrics,
  };
}
