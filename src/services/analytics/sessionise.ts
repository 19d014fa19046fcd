/**
 * Pure sessionisation. A visit is a maximal run of one subject's sightings at one store in which
 * consecutive sightings are less than `gap` apart: a gap of exactly `gap` (or more) starts a new
 * visit. Visits carry the sums needed for demographics so merging is exact (integer maths only).
 */
export type { Gender } from '../../vision/types.js';
import type { Gender } from '../../vision/types.js';

export type SightingPoint = { seenAt: number; age: number | null; gender: Gender | null };

export type VisitAgg = {
  startedAt: number;
  endedAt: number;
  sightings: number;
  /** sum of round(age * 1000) over sightings that have an age */
  ageMilliSum: number;
  ageCount: number;
  maleCount: number;
  femaleCount: number;
};

export function pointVisit(p: SightingPoint): VisitAgg {
  const hasAge = p.age !== null && Number.isFinite(p.age);
  return {
    startedAt: p.seenAt,
    endedAt: p.seenAt,
    sightings: 1,
    ageMilliSum: hasAge ? Math.round((p.age as number) * 1000) : 0,
    ageCount: hasAge ? 1 : 0,
    maleCount: p.gender === 'male' ? 1 : 0,
    femaleCount: p.gender === 'female' ? 1 : 0,
  };
}

export function mergeVisits(a: VisitAgg, b: VisitAgg): VisitAgg {
  return {
    startedAt: Math.min(a.startedAt, b.startedAt),
    endedAt: Math.max(a.endedAt, b.endedAt),
    sightings: a.sightings + b.sightings,
    ageMilliSum: a.ageMilliSum + b.ageMilliSum,
    ageCount: a.ageCount + b.ageCount,
    maleCount: a.maleCount + b.maleCount,
    femaleCount: a.femaleCount + b.femaleCount,
  };
}

/** Sessionises sightings (any order) into visits, ascending by start. */
export function sessionise(points: SightingPoint[], gapMs: number): VisitAgg[] {
  return mergeIntervals(points.map(pointVisit), gapMs);
}

/**
 * Sweeps intervals (existing visits and/or single sightings) in start order and merges any two
 * whose gap is under `gapMs`. The result is what sessionising all their sightings would give,
 * provided each input visit is itself a valid session.
 */
export function mergeIntervals(items: VisitAgg[], gapMs: number): VisitAgg[] {
  const sorted = [...items].sort((x, y) => x.startedAt - y.startedAt || x.endedAt - y.endedAt);
  const out: VisitAgg[] = [];
  for (const item of sorted) {
    const last = out[out.length - 1];
    if (last && item.startedAt - last.endedAt < gapMs) out[out.length - 1] = mergeVisits(last, item);
    else out.push(item);
  }
  return out;
}

/** Result of adding new sightings to a subject's existing visits (at one store). */
export type VisitChange<V extends VisitAgg> = {
  /** existing visits that are unchanged (not touched by any new sighting) */
  kept: V[];
  /** existing visits that were absorbed or grown (to be replaced) */
  removed: V[];
  /** the visits that replace them */
  added: VisitAgg[];
};

/**
 * Incremental step: `existing` are the subject's visits that could be affected (at least all
 * whose extent comes within `gapMs` of a new sighting); returns which are replaced by what.
 * A late sighting can extend a visit, bridge two visits into one, or start a visit of its own.
 */
export function applySightings<V extends VisitAgg>(existing: V[], points: SightingPoint[], gapMs: number): VisitChange<V> {
  type Tagged = { agg: VisitAgg; sources: V[]; fresh: boolean };
  const items: Tagged[] = [
    ...existing.map((v) => ({ agg: v as VisitAgg, sources: [v], fresh: false })),
    ...points.map((p) => ({ agg: pointVisit(p), sources: [] as V[], fresh: true })),
  ].sort((x, y) => x.agg.startedAt - y.agg.startedAt || x.agg.endedAt - y.agg.endedAt);
  const groups: Tagged[] = [];
  for (const item of items) {
    const last = groups[groups.length - 1];
    if (last && item.agg.startedAt - last.agg.endedAt < gapMs) {
      groups[groups.length - 1] = {
        agg: mergeVisits(last.agg, item.agg),
        sources: [...last.sources, ...item.sources],
        fresh: last.fresh || item.fresh,
      };
    } else {
      groups.push({ ...item, agg: { ...item.agg } });
    }
  }
  const change: VisitChange<V> = { kept: [], removed: [], added: [] };
  for (const group of groups) {
    if (!group.fresh && group.sources.length === 1) change.kept.push(group.sources[0]);
    else {
      change.removed.push(...group.sources);
      change.added.push(group.agg);
    }
  }
  return change;
}

export const AGE_BUCKETS = ['0-17', '18-24', '25-34', '35-44', '45-54', '55-64', '65+'] as const;
export type AgeBucket = (typeof AGE_BUCKETS)[number];

/** A visit's age: mean of its sightings' ages (null if none had one). */
export function visitAge(v: Pick<VisitAgg, 'ageMilliSum' | 'ageCount'>): number | null {
  return v.ageCount > 0 ? v.ageMilliSum / v.ageCount / 1000 : null;
}

/** A visit's gender: the majority of its sightings' genders; null on a tie or none. */
export function visitGender(v: Pick<VisitAgg, 'maleCount' | 'femaleCount'>): Gender | null {
  if (v.maleCount > v.femaleCount) return 'male';
  if (v.femaleCount > v.maleCount) return 'female';
  return null;
}

export function ageBucketIndex(age: number | null): number | null {
  if (age === null) return null;
  const limits = [18, 25, 35, 45, 55, 65];
  for (let i = 0; i < limits.length; i++) if (age < limits[i]) return i;
  return 6;
}
