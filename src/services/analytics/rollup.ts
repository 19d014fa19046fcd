/**
 * What one subject contributes to one rollup bucket, from its visits that start in the bucket.
 * Rollup rows are sums of these contributions over subjects, so the incremental path can apply
 * (after - before) deltas for just the subjects it touched, and a rebuild can sum them afresh:
 * both give the same integers.
 */
import { ageBucketIndex, visitAge, visitGender, type VisitAgg } from './sessionise.js';
import type { SubjectKind } from '../../gallery/gallery.js';
import type { Interval } from './time.js';

export const METRICS = [
  'visits',
  'unique_subjects',
  'member_visits',
  'visitor_visits',
  'new_visitors',
  'returning_visitors',
  'sightings',
  'duration_ms_sum',
  'male_visits',
  'female_visits',
  'unknown_gender_visits',
  'age_0_17',
  'age_18_24',
  'age_25_34',
  'age_35_44',
  'age_45_54',
  'age_55_64',
  'age_65_plus',
  'age_unknown',
] as const;
export type Metric = (typeof METRICS)[number];
export type Metrics = Record<Metric, number>;

export const AGE_COLUMNS: Metric[] = ['age_0_17', 'age_18_24', 'age_25_34', 'age_35_44', 'age_45_54', 'age_55_64', 'age_65_plus'];

export function zeroMetrics(): Metrics {
  return Object.fromEntries(METRICS.map((m) => [m, 0])) as Metrics;
}

export function addInto(target: Metrics, source: Metrics, sign = 1): Metrics {
  for (const m of METRICS) target[m] += sign * source[m];
  return target;
}

export type { SubjectKind };
export type FirstVisit = { at: number; storeId: string } | null;

/**
 * `visits`: this subject's visits at `storeId` that start in [bucketStart, bucketEnd).
 * newVisitors: a visitor whose first visit at the merchant starts in this bucket at this store.
 * returningVisitors: a visitor with a visit here whose first visit at the merchant started
 * before the bucket. (Both count anonymous visitors only; members are counted in memberVisits.)
 */
export function contribution(
  visits: VisitAgg[],
  kind: SubjectKind,
  first: FirstVisit,
  storeId: string,
  bucketStart: number,
  bucketEnd: number,
): Metrics {
  const m = zeroMetrics();
  if (visits.length === 0) return m;
  m.visits = visits.length;
  m.unique_subjects = 1;
  if (kind === 'member') m.member_visits = visits.length;
  else m.visitor_visits = visits.length;
  if (kind === 'visitor' && first) {
    if (first.storeId === storeId && first.at >= bucketStart && first.at < bucketEnd) m.new_visitors = 1;
    if (first.at < bucketStart) m.returning_visitors = 1;
  }
  for (const v of visits) {
    m.sightings += v.sightings;
    m.duration_ms_sum += v.endedAt - v.startedAt;
    const gender = visitGender(v);
    if (gender === 'male') m.male_visits += 1;
    else if (gender === 'female') m.female_visits += 1;
    else m.unknown_gender_visits += 1;
    const age = ageBucketIndex(visitAge(v));
    if (age === null) m.age_unknown += 1;
    else m[AGE_COLUMNS[age]] += 1;
  }
  return m;
}

export type BucketKey = { storeId: string; granularity: Interval; bucketStart: number };
export const bucketKeyString = (k: BucketKey) => `${k.storeId}|${k.granularity}|${k.bucketStart}`;
