/**
 * Subject spans (migrations/20261204200001): per store and subject the starts of the first and
 * last visit there and the number of visits; per merchant and subject the last visit start.
 * Distinct counts over a range read these, one row per subject, instead of every visit; and the
 * per-day counts of where spans start and end (analytics_span_days, migrations/20261205300001),
 * so that a store's distinct subjects over a range need not read every span either.
 *
 * Written only by `refreshSpans`, which recomputes the rows of the given subjects from `visits`
 * and moves the span-day counts by the difference: exact by construction, whatever the change was
 * (a late upload, a retraction, a rebuild). `recountSpanDays` recounts a store's from its spans.
 */
import type { Knex } from 'knex';
import type { SubjectKind } from './rollup.js';

export type StoreSubject = { storeId: string; subjectId: string; merchantId: string };

type SpanRow = { subject_id: string; merchant_id: string; subject_kind: SubjectKind; first_visit_at: Date; last_visit_at: Date; visits: number };

/**
 * Recomputes the spans of the given (store, subject) pairs from their visits, the span-day counts
 * they move, the merchant-wide last visit of their subjects, and the first visit at the merchant
 * on every store span of those subjects. Call it after the transaction's
 * visit writes, with the subjects locked (lockAnalyticsSubjects).
 */
export async function refreshSpans(trx: Knex.Transaction, pairs: StoreSubject[]): Promise<void> {
  const byMerchant = groupIds(pairs, (p) => p.merchantId);
  const merchantBefore = new Map<string, SpanDayRow[]>();
  for (const [merchantId, ids] of byMerchant) merchantBefore.set(merchantId, await merchantSpans(trx, merchantId, ids));
  const byStore = groupIds(pairs, (p) => p.storeId);
  for (const [storeId, ids] of byStore) {
    for (const chunk of chunks(ids)) {
      // Locking reads: current rows whatever the transaction's snapshot (as INSERT … SELECT reads).
      const before: SpanRow[] = await trx('analytics_store_subjects').where('store_id', storeId).whereIn('subject_id', chunk).forUpdate()
        .select('subject_id', 'merchant_id', 'subject_kind', 'first_visit_at', 'last_visit_at', 'visits');
      const after: SpanRow[] = await trx('visits').where('store_id', storeId).whereIn('subject_id', chunk).forShare()
        .groupBy('subject_id', 'merchant_id', 'subject_kind')
        .select('subject_id', 'merchant_id', 'subject_kind', trx.raw('MIN(started_at) AS first_visit_at'), trx.raw('MAX(started_at) AS last_visit_at'),
          trx.raw('COUNT(*) AS visits'));
      const kept = new Set(after.map((r) => r.subject_id));
      const gone = before.filter((r) => !kept.has(r.subject_id)).map((r) => r.subject_id);
      if (gone.length > 0) await trx('analytics_store_subjects').where('store_id', storeId).whereIn('subject_id', gone).delete();
      if (after.length > 0) {
        const insert = trx('analytics_store_subjects').insert(after.map((r) => ({ store_id: storeId, ...r, visits: Number(r.visits) }))).toSQL().toNative();
        await trx.raw(
          `${insert.sql} ON DUPLICATE KEY UPDATE first_visit_at = VALUES(first_visit_at), last_visit_at = VALUES(last_visit_at), visits = VALUES(visits)`,
          [...insert.bindings] as Knex.RawBinding[],
        );
      }
      await moveSpanDays(trx, 'analytics_span_days', { store_id: storeId }, before, after);
    }
  }
  for (const [merchantId, ids] of byMerchant) {
    await moveSpanDays(trx, 'analytics_merchant_span_days', { merchant_id: merchantId }, merchantBefore.get(merchantId)!, await merchantSpans(trx, merchantId, ids));
    for (const chunk of chunks(ids)) {
      await trx.raw(
        `UPDATE analytics_subjects a SET last_visit_at =
           (SELECT MAX(s.last_visit_at) FROM analytics_store_subjects s WHERE s.merchant_id = a.merchant_id AND s.subject_id = a.subject_id)
         WHERE a.merchant_id = ? AND a.subject_id IN (${chunk.map(() => '?').join(', ')})`,
        [merchantId, ...chunk],
      );
      // Every store row of the subject: its first visit at the merchant may have moved with these visits.
      await trx.raw(
        `UPDATE analytics_store_subjects s JOIN analytics_subjects a ON a.merchant_id = s.merchant_id AND a.subject_id = s.subject_id
         SET s.merchant_first_visit_at = a.first_visit_at
         WHERE s.merchant_id = ? AND s.subject_id IN (${chunk.map(() => '?').join(', ')})`,
        [merchantId, ...chunk],
      );
    }
  }
}

type SpanDayRow = Pick<SpanRow, 'subject_kind' | 'first_visit_at' | 'last_visit_at'>;

/** The subjects' merchant-wide spans, from their store spans (first = analytics_subjects.first_visit_at, last = last_visit_at), locked. */
async function merchantSpans(trx: Knex.Transaction, merchantId: string, ids: string[]): Promise<SpanDayRow[]> {
  const out: SpanDayRow[] = [];
  for (const chunk of chunks(ids)) {
    out.push(...(await trx('analytics_store_subjects').where('merchant_id', merchantId).whereIn('subject_id', chunk).forUpdate()
      .groupBy('subject_id', 'subject_kind')
      .select('subject_kind', trx.raw('MIN(first_visit_at) AS first_visit_at'), trx.raw('MAX(last_visit_at) AS last_visit_at'))));
  }
  return out;
}

const utcDay = (t: Date) => t.toISOString().slice(0, 10);

/**
 * Adds the span-day counts (of `table`, for the store or merchant in `scope`) of the spans `after`
 * and takes away those of `before`, in key order; drops rows left at zero.
 */
async function moveSpanDays(
  trx: Knex.Transaction, table: 'analytics_span_days' | 'analytics_merchant_span_days', scope: Record<string, string>, before: SpanDayRow[], after: SpanDayRow[],
): Promise<void> {
  const deltas = new Map<string, { utc_day: string; subject_kind: SubjectKind; firsts: number; lasts: number }>();
  const add = (rows: SpanDayRow[], sign: number) => {
    for (const r of rows) {
      for (const [at, field] of [[r.first_visit_at, 'firsts'], [r.last_visit_at, 'lasts']] as const) {
        const key = `${utcDay(at)}|${r.subject_kind}`;
        const d = deltas.get(key) ?? { utc_day: utcDay(at), subject_kind: r.subject_kind, firsts: 0, lasts: 0 };
        d[field] += sign;
        deltas.set(key, d);
      }
    }
  };
  add(before, -1);
  add(after, 1);
  const changed = [...deltas.entries()].filter(([, d]) => d.firsts !== 0 || d.lasts !== 0).sort(([a], [b]) => (a < b ? -1 : 1)).map(([, d]) => d);
  if (changed.length === 0) return;
  const insert = trx(table).insert(changed.map((d) => ({ ...scope, ...d }))).toSQL().toNative();
  await trx.raw(`${insert.sql} ON DUPLICATE KEY UPDATE firsts = firsts + VALUES(firsts), lasts = lasts + VALUES(lasts)`, [...insert.bindings] as Knex.RawBinding[]);
  const shrunk = changed.filter((d) => d.firsts < 0 || d.lasts < 0);
  if (shrunk.length > 0) {
    await trx(table).where(scope).whereIn(['utc_day', 'subject_kind'], shrunk.map((d) => [d.utc_day, d.subject_kind]))
      .where({ firsts: 0, lasts: 0 }).delete();
  }
}

/** Recounts a store's span-day rows from its spans (the rebuild's last step), the spans read with share locks. */
export const recountSpanDays = (trx: Knex.Transaction, storeId: string) =>
  recount(trx, 'analytics_span_days', 'analytics_store_subjects', { store_id: storeId });

/** Recounts a merchant's span-day rows from its subjects' first and last visits (read with share locks). */
export const recountMerchantSpanDays = (trx: Knex.Transaction, merchantId: string) =>
  recount(trx, 'analytics_merchant_span_days', 'analytics_subjects', { merchant_id: merchantId });

/** Replaces the span-day rows of `scope` in `table` with counts of the first and last visit days in `source`. */
async function recount(
  trx: Knex.Transaction,
  table: 'analytics_span_days' | 'analytics_merchant_span_days',
  source: 'analytics_store_subjects' | 'analytics_subjects',
  scope: Record<string, string>,
): Promise<void> {
  const counts = new Map<string, Record<string, string | number>>();
  for (const [column, field] of [['first_visit_at', 'firsts'], ['last_visit_at', 'lasts']] as const) {
    const rows: { utc_day: string; subject_kind: SubjectKind; n: unknown }[] = await trx(source).where(scope)
      .whereNotNull(column).groupByRaw('1, 2').forShare()
      .select(trx.raw(`DATE_FORMAT(??, '%Y-%m-%d') AS utc_day`, [column]), 'subject_kind', trx.raw('COUNT(*) AS n'));
    for (const r of rows) {
      const key = `${r.utc_day}|${r.subject_kind}`;
      const c = counts.get(key) ?? { ...scope, utc_day: r.utc_day, subject_kind: r.subject_kind, firsts: 0, lasts: 0 };
      c[field] = Number(r.n);
      counts.set(key, c);
    }
  }
  await trx(table).where(scope).delete();
  const rows = [...counts.values()];
  for (let i = 0; i < rows.length; i += 1000) await trx(table).insert(rows.slice(i, i + 1000));
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

const DAY = 86_400_000;

/**
 * SQL expression: the number of the store's subjects (of one kind, or all) with a visit starting in
 * [lo, hi). Those whose span meets the range are #(first < hi) - #(last < lo): span-day sums over
 * the days before, plus the span rows whose first (last) visit starts on hi's (lo's) UTC day before
 * hi (lo); less the spans that strictly contain the range without a visit inside (one index probe
 * each; none when the range reaches the store's latest visits). Bindings: storeDistinctBindings.
 */
export const storeDistinctSubjects = (kind?: SubjectKind) => {
  const k = (alias: string) => (kind ? ` AND ${alias}.subject_kind = '${kind}'` : '');
  return `((SELECT COALESCE(SUM(CASE WHEN d.utc_day < ? THEN d.firsts ELSE 0 END) - SUM(CASE WHEN d.utc_day < ? THEN d.lasts ELSE 0 END), 0)
      FROM analytics_span_days d WHERE d.store_id = ? AND d.utc_day < ?${k('d')})
    + (SELECT COUNT(*) FROM analytics_store_subjects s WHERE s.store_id = ? AND s.first_visit_at >= ? AND s.first_visit_at < ?${k('s')})
    - (SELECT COUNT(*) FROM analytics_store_subjects s WHERE s.store_id = ? AND s.last_visit_at >= ? AND s.last_visit_at < ?${k('s')})
    - (SELECT COUNT(*) FROM analytics_store_subjects s WHERE s.store_id = ? AND s.last_visit_at >= ? AND s.first_visit_at < ?${k('s')}
       AND NOT EXISTS (SELECT 1 FROM visits v WHERE v.store_id = s.store_id AND v.subject_id = s.subject_id AND v.started_at >= ? AND v.started_at < ?)))`;
};

export const storeDistinctBindings = (storeId: string, lo: number, hi: number) => {
  const [l, h] = [new Date(lo), new Date(hi)];
  const [dayLo, dayHi] = [new Date(Math.floor(lo / DAY) * DAY), new Date(Math.floor(hi / DAY) * DAY)];
  return [dayHi, dayLo, storeId, dayHi, storeId, dayHi, h, storeId, dayLo, l, storeId, h, l, l, h];
};

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
