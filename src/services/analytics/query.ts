/**
 * Read side of analytics: answers from the rollup tables (bucket series, weekday x hour), and
 * from visits only for figures that are not sums (distinct subjects over a whole range, visit
 * frequency, median visit length). All ranges are [from floored to its bucket, to).
 */
import type { Knex } from 'knex';
import { AGE_BUCKETS } from './sessionise.js';
import { BucketList, jsonNumber, type BucketShape } from './bucket-list.js';
import { AGE_COLUMNS, type Metric, type Metrics } from './rollup.js';
import { bucketMetrics, groupBySubject, visitsWithFirstVisit, type SubjectVisits } from './store.js';
import { spanBindings, storeDistinctBindings, storeDistinctSubjects, storeSpanInRange, storeSpanVisits } from './spans.js';
import { zone, type Interval, type Zone } from './time.js';

export type StoreRef = { id: string; merchantId: string; name: string; timezone: string };
export type Range = { from: number; to: number; interval: Interval };

type RollupRow = Record<Metric, number> & { bucket_start: Date };

/**
 * The range's bucket labels and each bucket's rollup row (undefined: no visits). `to` is
 * exclusive: a last bucket that `to` cuts short is summed afresh from the visits that start in
 * [its start, to), as a rebuild would sum it.
 */
async function rollupSeries(db: Knex, store: StoreRef, range: Range, columns: Metric[]) {
  const z = zone(store.timezone);
  const { starts, labels } = z.series(range.from, range.to, range.interval);
  const lo = starts[0] ?? range.from;
  const last = starts[starts.length - 1];
  const cut = last !== undefined && z.nextBucket(last, range.interval) > range.to ? last : undefined;
  const [rows, partial] = await Promise.all([
    db('analytics_rollups')
      .where({ store_id: store.id, granularity: range.interval })
      .where('bucket_start', '>=', new Date(lo))
      .where('bucket_start', '<', new Date(cut ?? range.to))
      .select('bucket_start', ...columns) as Promise<RollupRow[]>,
    cut === undefined ? undefined : partialBucket(db, store.id, cut, range.to),
  ]);
  const byStart = new Map<number, RollupRow>(rows.map((r) => [r.bucket_start.getTime(), r]));
  if (cut !== undefined && partial) byStart.set(cut, { ...partial, bucket_start: new Date(cut) });
  return { z, labels, lo, rows: starts.map((s) => byStart.get(s)) };
}

/** A store's rollup metrics over the visits starting in [from, to), as a rebuild sums a bucket. */
async function partialBucket(db: Knex, storeId: string, from: number, to: number): Promise<Metrics> {
  const subjects = new Map<string, SubjectVisits>();
  for (const row of (await visitsWithFirstVisit(db, storeId, from, to)) as Record<string, unknown>[]) groupBySubject(subjects, row);
  return bucketMetrics(subjects.values(), storeId, from, to);
}

const DAY = 86_400_000;
const num = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));
/** The JSON text of num(v). */
const numJson = (v: unknown) => jsonNumber(num(v));

/** Distinct subjects with a visit starting in [lo, hi) at the store, from their span days and spans (spans.ts): exact. */
async function distinctSubjects(db: Knex, storeId: string, lo: number, hi: number): Promise<number> {
  const [[row]] = (await db.raw(`SELECT ${storeDistinctSubjects()} AS n`, storeDistinctBindings(storeId, lo, hi))) as unknown as [Record<string, unknown>[]];
  return num(row?.n);
}

type VisitCounts = { visits: number; memberVisits: number; visitorVisits: number; newVisitors: number };

/** Adds a bucket's or a store's visit counts into the totals (distinct counts are not additive). */
function addVisitCounts(totals: VisitCounts, counts: VisitCounts): void {
  totals.visits += counts.visits;
  totals.memberVisits += counts.memberVisits;
  totals.visitorVisits += counts.visitorVisits;
  totals.newVisitors += counts.newVisitors;
}

export const TRAFFIC_BUCKET = {
  object: (start: string, r: RollupRow | undefined) => ({
    start,
    visits: num(r?.visits),
    uniqueSubjects: num(r?.unique_subjects),
    memberVisits: num(r?.member_visits),
    visitorVisits: num(r?.visitor_visits),
    newVisitors: num(r?.new_visitors),
    returningVisitors: num(r?.returning_visitors),
  }),
  jsonAfterStart: (r: RollupRow | undefined) =>
    `,"visits":${numJson(r?.visits)},"uniqueSubjects":${numJson(r?.unique_subjects)},"memberVisits":${numJson(r?.member_visits)}` +
    `,"visitorVisits":${numJson(r?.visitor_visits)},"newVisitors":${numJson(r?.new_visitors)},"returningVisitors":${numJson(r?.returning_visitors)}}`,
} satisfies BucketShape<RollupRow, object>;

export async function traffic(db: Knex, store: StoreRef, range: Range) {
  const cols: Metric[] = ['visits', 'unique_subjects', 'member_visits', 'visitor_visits', 'new_visitors', 'returning_visitors'];
  // The whole-range distinct count runs beside the bucket read (no rows in range: both empty).
  const lo0 = zone(store.timezone).bucketStart(range.from, range.interval);
  const [{ z, labels, lo, rows }, uniqueSubjects] = await Promise.all([
    rollupSeries(db, store, range, cols),
    distinctSubjects(db, store.id, lo0, range.to),
  ]);
  const totals = { visits: 0, uniqueSubjects, memberVisits: 0, visitorVisits: 0, newVisitors: 0 };
  for (const r of rows) {
    if (r) addVisitCounts(totals, { visits: num(r.visits), memberVisits: num(r.member_visits), visitorVisits: num(r.visitor_visits), newVisitors: num(r.new_visitors) });
  }
  const buckets = new BucketList(labels, rows, TRAFFIC_BUCKET);
  return { storeId: store.id, timezone: store.timezone, interval: range.interval, from: z.isoLocal(lo), to: new Date(range.to).toISOString(), buckets, totals };
}

const ageKeys = [...AGE_BUCKETS, 'unknown'] as const;

const ageOf = (r: RollupRow | undefined): Record<(typeof ageKeys)[number], number> => ({
  '0-17': num(r?.age_0_17), '18-24': num(r?.age_18_24), '25-34': num(r?.age_25_34), '35-44': num(r?.age_35_44),
  '45-54': num(r?.age_45_54), '55-64': num(r?.age_55_64), '65+': num(r?.age_65_plus), unknown: num(r?.age_unknown),
});

export const DEMOGRAPHICS_BUCKET = {
  object: (start: string, r: RollupRow | undefined) => ({
    start,
    visits: num(r?.visits),
    gender: { male: num(r?.male_visits), female: num(r?.female_visits), unknown: num(r?.unknown_gender_visits) },
    age: ageOf(r),
  }),
  jsonAfterStart: (r: RollupRow | undefined) =>
    `,"visits":${numJson(r?.visits)},"gender":{"male":${numJson(r?.male_visits)},"female":${numJson(r?.female_visits)},"unknown":${numJson(r?.unknown_gender_visits)}}` +
    `,"age":{"0-17":${numJson(r?.age_0_17)},"18-24":${numJson(r?.age_18_24)},"25-34":${numJson(r?.age_25_34)},"35-44":${numJson(r?.age_35_44)}` +
    `,"45-54":${numJson(r?.age_45_54)},"55-64":${numJson(r?.age_55_64)},"65+":${numJson(r?.age_65_plus)},"unknown":${numJson(r?.age_unknown)}}}`,
} satisfies BucketShape<RollupRow, object>;

export async function demographics(db: Knex, store: StoreRef, range: Range) {
  const cols: Metric[] = ['visits', 'male_visits', 'female_visits', 'unknown_gender_visits', ...AGE_COLUMNS, 'age_unknown', 'duration_ms_sum'];
  // The median is over the same visits as the buckets' totals (those starting in [first bucket,
  // to)), whose number the buckets give: it is read after them.
  const lo0 = zone(store.timezone).bucketStart(range.from, range.interval);
  const { z, labels, lo, rows } = await rollupSeries(db, store, range, cols);
  const totals = {
    visits: 0,
    gender: { male: 0, female: 0, unknown: 0 },
    age: ageOf(undefined),
    averageVisitMinutes: 0,
    medianVisitMinutes: 0,
  };
  let durationSum = 0;
  for (const r of rows) {
    if (!r) continue;
    totals.visits += num(r.visits);
    totals.gender.male += num(r.male_visits);
    totals.gender.female += num(r.female_visits);
    totals.gender.unknown += num(r.unknown_gender_visits);
    const age = ageOf(r);
    for (const k of ageKeys) totals.age[k] += age[k];
    durationSum += num(r.duration_ms_sum);
  }
  if (totals.visits > 0) {
    totals.averageVisitMinutes = round2(durationSum / totals.visits / 60_000);
    totals.medianVisitMinutes = round2((await medianDuration(db, store.id, lo0, range.to, totals.visits)) / 60_000);
  }
  const buckets = new BucketList(labels, rows, DEMOGRAPHICS_BUCKET);
  return { storeId: store.id, timezone: store.timezone, interval: range.interval, from: z.isoLocal(lo), to: new Date(range.to).toISOString(), buckets, totals };
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/**
 * Median visit length in ms over the store's `count` visits starting in [lo, hi): the middle one
 * or two in length order, read from the index (store_id, duration_ms, started_at) up to them.
 */
async function medianDuration(db: Knex, storeId: string, lo: number, hi: number, count: number): Promise<number> {
  const middle: { duration_ms: unknown }[] = await db('visits').where('store_id', storeId)
    .where('started_at', '>=', new Date(lo)).where('started_at', '<', new Date(hi))
    .orderBy('duration_ms').offset(Math.floor((count - 1) / 2)).limit(count % 2 === 0 ? 2 : 1)
    .select('duration_ms');
  return middle.length === 0 ? 0 : middle.reduce((sum, r) => sum + num(r.duration_ms), 0) / middle.length;
}

const FREQUENCY = [
  { label: '1', min: 1, max: 1 },
  { label: '2', min: 2, max: 2 },
  { label: '3-5', min: 3, max: 5 },
  { label: '6-10', min: 6, max: 10 },
  { label: '11+', min: 11, max: Infinity },
];

export const VISITORS_BUCKET = {
  object: (start: string, r: RollupRow | undefined) => ({
    start,
    visitorVisits: num(r?.visitor_visits),
    newVisitors: num(r?.new_visitors),
    returningVisitors: num(r?.returning_visitors),
  }),
  jsonAfterStart: (r: RollupRow | undefined) =>
    `,"visitorVisits":${numJson(r?.visitor_visits)},"newVisitors":${numJson(r?.new_visitors)},"returningVisitors":${numJson(r?.returning_visitors)}}`,
} satisfies BucketShape<RollupRow, object>;

export async function visitors(db: Knex, store: StoreRef, range: Range) {
  const cols: Metric[] = ['visitor_visits', 'new_visitors', 'returning_visitors', 'member_visits'];
  // Whole-range figures, beside the bucket read: distinct visitors and how often each came (visits
  // in the range), from the store's visitor spans: a span inside the range brings its visit count,
  // only one that the range cuts counts its visits in the range; returning from the span's first visit at the merchant.
  // One row per number of visits: the expression for it is then worked out once per span, where
  // each aggregate over it worked it out again (a year of 11 k spans: 8 ms against 18).
  const lo0 = zone(store.timezone).bucketStart(range.from, range.interval);
  const [{ z, labels, lo, rows }, [byVisits]] = await Promise.all([
    rollupSeries(db, store, range, cols),
    db.raw(
      `SELECT x.n, COUNT(*) AS visitors, SUM(x.merchant_first_visit_at < ?) AS returned
       FROM (SELECT s.merchant_first_visit_at, ${storeSpanVisits('s')} AS n FROM analytics_store_subjects s
             WHERE s.store_id = ? AND s.subject_kind = 'visitor' AND s.first_visit_at < ? AND s.last_visit_at >= ?) x
       GROUP BY x.n`,
      [new Date(lo0), ...spanBindings(lo0, range.to), store.id, new Date(range.to), new Date(lo0)],
    ) as unknown as Promise<[Record<string, unknown>[]]>,
  ]);
  let newVisitors = 0;
  for (const r of rows) newVisitors += num(r?.new_visitors);
  const buckets = new BucketList(labels, rows, VISITORS_BUCKET);
  // Visitors whose span meets the range without a visit in it have n = 0: not visitors of the range.
  const came = byVisits.map((r) => ({ visits: num(r.n), visitors: num(r.visitors), returning: num(r.returned) })).filter((r) => r.visits > 0);
  const visitorsWith = (keep: (visits: number) => boolean) => came.reduce((sum, r) => sum + (keep(r.visits) ? r.visitors : 0), 0);
  const frequency = FREQUENCY.map((f) => ({ visits: f.label, visitors: visitorsWith((n) => n >= f.min && n <= f.max) }));
  const uniqueVisitors = visitorsWith(() => true);
  const repeat = visitorsWith((n) => n >= 2);
  const returning = came.reduce((sum, r) => sum + r.returning, 0);
  return {
    storeId: store.id,
    timezone: store.timezone,
    interval: range.interval,
    from: z.isoLocal(lo),
    to: new Date(range.to).toISOString(),
    buckets,
    totals: { uniqueVisitors, newVisitors, returningVisitors: returning, repeatVisitors: repeat },
    frequency,
  };
}

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

/** Visits by local weekday x local hour (a fall-back day's two 01:00 hours both count in hour 1). */
export async function peakHours(db: Knex, store: StoreRef, range: Omit<Range, 'interval'>) {
  const z = zone(store.timezone);
  const lo = z.hourStart(range.from);
  const rows: { local_weekday: number; local_hour: number; visits: unknown; hours: unknown }[] = await db('analytics_rollups')
    .where({ store_id: store.id, granularity: 'hour' })
    .where('bucket_start', '>=', new Date(lo)).where('bucket_start', '<', new Date(range.to))
    .groupBy('local_weekday', 'local_hour')
    .select('local_weekday', 'local_hour', db.raw('SUM(visits) as visits'));
  const matrix = WEEKDAYS.map(() => Array.from({ length: 24 }, () => 0));
  for (const r of rows) matrix[r.local_weekday][r.local_hour] = num(r.visits);
  let peak = { weekday: WEEKDAYS[0], hour: 0, visits: 0 };
  matrix.forEach((row, d) => row.forEach((v, h) => { if (v > peak.visits) peak = { weekday: WEEKDAYS[d], hour: h, visits: v }; }));
  return {
    storeId: store.id,
    timezone: store.timezone,
    from: z.isoLocal(lo),
    to: new Date(range.to).toISOString(),
    weekdays: WEEKDAYS,
    matrix,
    cells: matrix.flatMap((row, d) => row.map((visits, hour) => ({ weekday: WEEKDAYS[d], hour, visits }))),
    peak: peak.visits > 0 ? peak : null,
  };
}

/** Stores a summary lists at once (`limit` up to this); further stores come with `cursor`. */
export const SUMMARY_MAX_STORES = 50;

/** Where a summary page starts: after the store of this name and id (stores are listed by name, id). */
export type SummaryPage = { limit: number; after?: { name: string; id: string } };

/**
 * A merchant's stores over [from, to), each floored to its local day. Totals cover every store;
 * the per-store rows (with their distinct subjects, the costly part) cover one page of stores.
 * Visit sums come from day rollups, one index range per store (UNION ALL), plus one partial-day
 * read per store whose local day `to` cuts short; distinct subjects come from spans (spans.ts):
 * per listed store from its subject spans, merchant-wide from the merchant's subject spans, each
 * row certain from its span unless the span strictly contains the range (then one index probe).
 */
export async function merchantSummary(db: Knex, merchant: { id: string; name: string }, range: Omit<Range, 'interval'>, page: SummaryPage) {
  const stores: StoreRef[] = await db('stores').where('merchant_id', merchant.id).orderBy(['name', 'id'])
    .select('id', 'merchant_id as merchantId', 'name', 'timezone');
  const starts = new Map(stores.map((s) => [s.id, zone(s.timezone).dayStart(range.from)]));
  const lo = Math.min(range.from, ...starts.values());
  const to = new Date(range.to);
  const totals = { visits: 0, uniqueSubjects: 0, memberVisits: 0, visitorVisits: 0, newVisitors: 0, membersSeen: 0, pointsAwarded: 0 };
  const empty = { merchantId: merchant.id, name: merchant.name, from: new Date(range.from).toISOString(), to: to.toISOString(), totals, stores: [], nextCursor: null };
  if (stores.length === 0) return empty;
  const first = page.after ? stores.findIndex((s) => s.name > page.after!.name || (s.name === page.after!.name && s.id > page.after!.id)) : 0;
  const listed = first < 0 ? [] : stores.slice(first, first + page.limit);
  const more = first >= 0 && first + page.limit < stores.length;
  // `to` is exclusive: a local day it cuts short is summed from its visits, not from its day rollup.
  const cuts = new Map(stores.map((s) => [s.id, Math.max(starts.get(s.id)!, zone(s.timezone).dayStart(range.to))]));
  const sumsSql = stores.map(() => `SELECT store_id, SUM(visits) AS visits, SUM(member_visits) AS member_visits, SUM(visitor_visits) AS visitor_visits,
      SUM(new_visitors) AS new_visitors FROM analytics_rollups WHERE store_id = ? AND granularity = 'day' AND bucket_start >= ? AND bucket_start < ? GROUP BY store_id`).join(' UNION ALL ');
  const sumsBindings = stores.flatMap((s) => [s.id, new Date(starts.get(s.id)!), new Date(cuts.get(s.id)!)]);
  const partials = Promise.all(stores.map((s) => (cuts.get(s.id)! < range.to ? partialBucket(db, s.id, cuts.get(s.id)!, range.to) : undefined)));
  const uniquesSql = listed.map(() => `SELECT ? AS store_id, ${storeDistinctSubjects()} AS n`).join(' UNION ALL ');
  const uniquesBindings = listed.flatMap((s) => [s.id, ...storeDistinctBindings(s.id, starts.get(s.id)!, range.to)]);
  const [[sums], [uniques], merchantWide, points, partial] = await Promise.all([
    db.raw(sumsSql, sumsBindings) as unknown as Promise<[Record<string, unknown>[]]>,
    (listed.length === 0 ? [[]] : db.raw(uniquesSql, uniquesBindings)) as unknown as Promise<[Record<string, unknown>[]]>,
    merchantSubjects(db, merchant.id, stores.map((s) => ({ id: s.id, lo: starts.get(s.id)! })), range.to),
    merchantPoints(db, merchant.id, lo, range.to),
    partials,
  ]);
  const sumBy = new Map(sums.map((r: Record<string, unknown>) => [r.store_id as string, r]));
  const uniqueBy = new Map(uniques.map((r: Record<string, unknown>) => [r.store_id as string, num(r.n)]));
  const rows = stores.map((store, i) => {
    const r = sumBy.get(store.id) as Record<string, unknown> | undefined;
    const p = partial[i];
    const row = {
      storeId: store.id,
      name: store.name,
      timezone: store.timezone,
      visits: num(r?.visits) + (p?.visits ?? 0),
      uniqueSubjects: uniqueBy.get(store.id) ?? 0,
      memberVisits: num(r?.member_visits) + (p?.member_visits ?? 0),
      visitorVisits: num(r?.visitor_visits) + (p?.visitor_visits ?? 0),
      newVisitors: num(r?.new_visitors) + (p?.new_visitors ?? 0),
    };
    addVisitCounts(totals, row);
    return row;
  });
  totals.uniqueSubjects = merchantWide.subjects;
  totals.membersSeen = merchantWide.members;
  totals.pointsAwarded = points;
  const out = rows.slice(Math.max(first, 0), Math.max(first, 0) + listed.length);
  const last = listed[listed.length - 1];
  return {
    merchantId: merchant.id, name: merchant.name, from: new Date(lo).toISOString(), to: to.toISOString(), totals, stores: out,
    nextCursor: more && last ? encodeSummaryCursor({ name: last.name, id: last.id }) : null,
  };
}

export const encodeSummaryCursor = (after: { name: string; id: string }) => Buffer.from(JSON.stringify([after.name, after.id])).toString('base64url');

/** The store a summary cursor points after, or undefined when it is not one. */
export function decodeSummaryCursor(cursor: string): { name: string; id: string } | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && value.every((x) => typeof x === 'string')) return { name: value[0], id: value[1] };
  } catch {
    // not JSON: not a cursor
  }
  return undefined;
}

/**
 * Distinct subjects (and members) with a visit at any of the merchant's stores starting in that
 * store's [lo, to), from the merchant-wide spans (first and last visit at the merchant): those whose
 * span meets [min lo, to) are #(first < to) - #(last < min lo), from the merchant's span days plus
 * the subjects whose first (last) visit starts on to's (min lo's) UTC day; then the spans that may
 * meet the range without a visit in it are taken off one by one when their store spans (and, for
 * a store span containing its store's range, one index probe into visits) say so: those ending
 * between the earliest and the latest store's lo (a day's subjects), and those containing the range.
 */
async function merchantSubjects(db: Knex, merchantId: string, stores: { id: string; lo: number }[], to: number) {
  const loMin = Math.min(...stores.map((s) => s.lo));
  const loMax = Math.max(...stores.map((s) => s.lo));
  const [dayLo, dayTo] = [Math.floor(loMin / DAY) * DAY, Math.floor(to / DAY) * DAY].map((t) => new Date(t));
  const [lo, hi, mid] = [new Date(loMin), new Date(to), new Date(loMax)];
  const storeRanges = stores.map(() => 'SELECT ? AS store_id, ? AS lo').join(' UNION ALL ');
  const noVisit = `NOT EXISTS (SELECT 1 FROM analytics_store_subjects s JOIN (${storeRanges}) r ON r.store_id = s.store_id
    WHERE s.merchant_id = a.merchant_id AND s.subject_id = a.subject_id AND ${storeSpanInRange('s', 'r.lo')})`;
  const noVisitBindings = [...stores.flatMap((s) => [s.id, new Date(s.lo)]), hi, hi, hi];
  const count = (kind: string) => `((SELECT COALESCE(SUM(CASE WHEN d.utc_day < ? THEN d.firsts ELSE 0 END) - SUM(CASE WHEN d.utc_day < ? THEN d.lasts ELSE 0 END), 0)
      FROM analytics_merchant_span_days d WHERE d.merchant_id = ? AND d.utc_day < ?${kind.replace(/a\./g, 'd.')})
    + (SELECT COUNT(*) FROM analytics_subjects a WHERE a.merchant_id = ? AND a.first_visit_at >= ? AND a.first_visit_at < ?${kind})
    - (SELECT COUNT(*) FROM analytics_subjects a WHERE a.merchant_id = ? AND a.last_visit_at >= ? AND a.last_visit_at < ?${kind})
    - (SELECT COUNT(*) FROM analytics_subjects a WHERE a.merchant_id = ? AND a.last_visit_at >= ? AND a.last_visit_at < ?${kind} AND ${noVisit})
    - (SELECT COUNT(*) FROM analytics_subjects a WHERE a.merchant_id = ? AND a.last_visit_at >= ? AND a.first_visit_at < ?${kind} AND ${noVisit}))`;
  const bindings = [
    dayTo, dayLo, merchantId, dayTo,
    merchantId, dayTo, hi,
    merchantId, dayLo, lo,
    merchantId, lo, mid, ...noVisitBindings,
    merchantId, hi, mid, ...noVisitBindings,
  ];
  const [[row]] = (await db.raw(`SELECT ${count('')} AS n, ${count(" AND a.subject_kind = 'member'")} AS members`, [...bindings, ...bindings])) as unknown as [
    Record<string, unknown>[],
  ];
  return { subjects: num(row?.n), members: num(row?.members) };
}

/** Points awarded at the merchant's stores in [lo, to) (not cached: erasing a member removes its awards). */
export async function merchantPoints(db: Knex, merchantId: string, lo: number, to: number): Promise<number> {
  const row = await db('perk_awards as p').join('stores as s', 's.id', 'p.store_id').where('s.merchant_id', merchantId)
    .where('p.awarded_at', '>=', new Date(lo)).where('p.awarded_at', '<', new Date(to))
    .first(db.raw('COALESCE(SUM(p.points),0) as points'));
  return num((row as Record<string, unknown> | undefined)?.points);
}

/** Recent member recognitions at a store (erased members have no person and are left out). */
export async function recognitions(db: Knex, store: StoreRef, since: number, limit: number) {
  // The newest member sightings of the store first (index sightings_store_members_recent, read
  // backwards), then their people and awards: never every sighting of the range or of every member.
  const recent = db('sightings').where('store_id', store.id).where('subject_kind', 'member').whereNotNull('person_id')
    .where('seen_at', '>=', new Date(since))
    .orderBy('seen_at', 'desc').orderBy('face_id')
    .limit(limit)
    .select('face_id', 'person_id', 'seen_at', 'capture_id')
    .as('s');
  const rows = await db.from(recent)
    .join('people as p', 'p.id', 's.person_id')
    .leftJoin('faces as f', 'f.id', 's.face_id')
    .leftJoin('perk_awards as a', function join() {
      this.on('a.capture_id', '=', 's.capture_id').andOn('a.face_index', '=', 'f.face_index');
    })
    .where('p.merchant_id', store.merchantId)
    .orderBy('s.seen_at', 'desc').orderBy('s.face_id')
    .select('s.person_id', 'p.display_name', 'p.external_id', 's.seen_at', 's.capture_id', 's.face_id', 'a.points as awarded');
  return {
    storeId: store.id,
    since: new Date(since).toISOString(),
    recognitions: rows.map((r: Record<string, unknown>) => ({
      personId: r.person_id,
      displayName: r.display_name,
      externalId: r.external_id ?? null,
      seenAt: (r.seen_at as Date).toISOString(),
      captureId: r.capture_id,
      faceId: r.face_id,
      pointsAwarded: num(r.awarded),
    })),
  };
}

export type { Zone };
