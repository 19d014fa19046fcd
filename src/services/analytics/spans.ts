/**
 * Subject spans (migrations/20261204200001): per store and subject the starts of the first and
 * last visit there and the number of visits; per merchant and subject the last visit start.
 * Distinct counts over a range read these, one row per subject, instead of every visit.
 *
 * Written only by `refreshSpans`, which recomputes the rows of the given subjects from `visits`:
 * exact by construction, whatever the change was (a late upload, a retraction, a rebuild).
 */
import type { Knex } from 'knex';

export type StoreSubject = { storeId: string; subjectId: string; merchantId: string };

/**
 * Recomputes the spans of the given (store, subject) pairs from their visits, and the
 * merchant-wide last visit of their subjects. Call it after the transaction's visit writes, with
 * the subjects locked (lockAnalyticsSubjects). Two statements per store and two per merchant.
 */
export async function refreshSpans(trx: Knex.Transaction, pairs: StoreSubject[]): Promise<void> {
  const byStore = groupIds(pairs, (p) => p.storeId);
  for (const [storeId, ids] of byStore) {
    for (const chunk of chunks(ids)) {
      await trx('analytics_store_subjects').where('store_id', storeId).whereIn('subject_id', chunk).delete();
      await trx.raw(
        `INSERT INTO analytics_store_subjects (store_id, subject_id, merchant_id, subject_kind, first_visit_at, last_visit_at, visits)
         SELECT store_id, subject_id, merchant_id, subject_kind, MIN(started_at), MAX(started_at), COUNT(*)
         FROM visits WHERE store_id = ? AND subject_id IN (${chunk.map(() => '?').join(', ')})
         GROUP BY store_id, subject_id, merchant_id, subject_kind`,
        [storeId, ...chunk],
      );
    }
  }
  for (const [merchantId, ids] of groupIds(pairs, (p) => p.merchantId)) {
    for (const chunk of chunks(ids)) {
      await trx.raw(
        `UPDATE analytics_subjects a SET last_visit_at =
           (SELECT MAX(s.last_visit_at) FROM analytics_store_subjects s WHERE s.merchant_id = a.merchant_id AND s.subject_id = a.subject_id)
         WHERE a.merchant_id = ? AND a.subject_id IN (${chunk.map(() => '?').join(', ')})`,
        [merchantId, ...chunk],
      );
    }
  }
}

function groupIds(pairs: StoreSubject[], keyOf: (p: StoreSubject) => string): [string, string[]][] {
  const groups = new Map<string, Set<string>>();
  for (const p of pairs) groups.set(keyOf(p), (groups.get(keyOf(p)) ?? new Set()).add(p.subjectId));
  return [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, ids]) => [key, [...ids].sort()]);
}

function chunks<T>(items: T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * SQL condition: the span row `alias` (of analytics_store_subjects) has a visit starting in
 * [lo, hi) at its store. Certain from the span unless the span strictly contains the range; only
 * then is one index probe into visits needed. `lo` and `hi` are SQL expressions, placeholders by
 * default (bindings: spanBindings(lo, hi)); with another `lo` the placeholders left are hi's, three.
 */
export const storeSpanInRange = (alias: string, lo = '?', hi = '?') =>
  `${alias}.first_visit_at < ${hi} AND ${alias}.last_visit_at >= ${lo} AND (${alias}.first_visit_at >= ${lo} OR ${alias}.last_visit_at < ${hi}
   OR EXISTS (SELECT 1 FROM visits v WHERE v.store_id = ${alias}.store_id AND v.subject_id = ${alias}.subject_id AND v.started_at >= ${lo} AND v.started_at < ${hi}))`;

export const spanBindings = (lo: number, hi: number) => {
  const [l, h] = [new Date(lo), new Date(hi)];
  return [h, l, l, h, l, h];
};

/** SQL expression: the span row's visits starting in [lo, hi) (its count, unless the range cuts the span). Bindings: spanBindings(lo, hi). */
export const storeSpanVisits = (alias: string) =>
  `CASE WHEN ${alias}.first_visit_at < ? AND ${alias}.last_visit_at >= ? AND ${alias}.first_visit_at >= ? AND ${alias}.last_visit_at < ? THEN ${alias}.visits
   ELSE (SELECT COUNT(*) FROM visits v WHERE v.store_id = ${alias}.store_id AND v.subject_id = ${alias}.subject_id AND v.started_at >= ? AND v.started_at < ?) END`;
