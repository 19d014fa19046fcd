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
import { withHeldWrites, type HeldWrites, type Statement } from '../../storage/transactions.js';

export type StoreSubject = { storeId: string; subjectId: string; merchantId: string };

/** A subject's span at the merchant: the starts of its first and last visit at any store, as `analytics_subjects` holds them. */
export type MerchantSpan = { kind: SubjectKind; first: Date; last: Date | null };

export const subjectKey = (s: { merchantId: string; subjectId: string }) => `${s.merchantId}|${s.subjectId}`;

type SpanRow = { subject_id: string; merchant_id: string; subject_kind: SubjectKind; first_visit_at: Date; last_visit_at: Date; visits: number };
type SpanDayRow = Pick<SpanRow, 'subject_kind' | 'first_visit_at' | 'last_visit_at'>;

/** One subject's store spans at the stores refreshed, before and after. */
type Touched = { merchantId: string; subjectId: string; before: SpanRow[]; after: SpanRow[] };

/**
 * Recomputes the spans of the given (store, subject) pairs from their visits, the span-day counts
 * they move, the merchant-wide last visit of their subjects, and the first visit at the merchant
 * on every store span of those subjects. Call it after the transaction's visit writes and
 * first-visit updates, with the subjects locked (lockAnalyticsSubjects).
 *
 * `merchantBefore`: the subjects' merchant spans before the change, as lockAnalyticsSubjects read
 * them (a subject without one had no visit): the merchant-wide rows are then derived from the
 * store spans read here, and only those that changed are written. Without it (the rebuild) they
 * are read from all the subjects' store spans, and rewritten for every subject with a span at the
 * stores refreshed, which also repairs them. `callersWrites`: the caller's held writes (the visit
 * rows these spans are computed from); the writes here join them, and the caller flushes them.
 */
export async function refreshSpans(
  trx: Knex.Transaction,
  pairs: StoreSubject[],
  merchantBefore?: ReadonlyMap<string, MerchantSpan>,
  callersWrites?: HeldWrites,
): Promise<void> {
  await withHeldWrites(trx, callersWrites, async (held) => {
    const before = merchantBefore ?? (await readMerchantSpans(trx, held, pairs));
    const touched = await refreshStoreSpans(trx, held, pairs, before);
    const after = await merchantSpansAfter(trx, held, touched, before);
    type Spans = ReadonlyMap<string, MerchantSpan | null>;
    const spanOf = (spans: Spans, t: Touched) => spans.get(subjectKey(t)) ?? null;
    const differs = (t: Touched, at: (span: MerchantSpan | null) => number | null) => merchantBefore === undefined || at(spanOf(before, t)) !== at(spanOf(after, t));
    const firstAt = (span: MerchantSpan | null) => span?.first.getTime() ?? null;
    const lastAt = (span: MerchantSpan | null) => span?.last?.getTime() ?? null;
    for (const [merchantId, subjects] of groupBy([...touched.values()], (t) => t.merchantId)) {
      const rows = (spans: Spans) => subjects.flatMap((t) => spanDayRow(spanOf(spans, t)));
      // A moved first visit at the merchant, onto the subject's spans at other stores too (new or
      // changed spans here got it as they were written); a subject without visits before has no other.
      const moved = subjects.filter((t) => differs(t, firstAt) && spanOf(before, t) !== null && spanOf(after, t) !== null);
      held.hold(
        ...spanDayMoves(trx, 'analytics_merchant_span_days', { merchant_id: merchantId }, rows(before), rows(after)),
        ...lastVisitUpdates(trx, merchantId, subjects.filter((t) => differs(t, lastAt)), after),
        ...chunks(moved.map((t) => t.subjectId)).map((chunk) =>
          trx.raw(
            `UPDATE analytics_store_subjects s JOIN analytics_subjects a ON a.merchant_id = s.merchant_id AND a.subject_id = s.subject_id
             SET s.merchant_first_visit_at = a.first_visit_at
             WHERE s.merchant_id = ? AND s.subject_id IN (${chunk.map(() => '?').join(', ')})`,
            [merchantId, ...chunk],
          ),
        ),
      );
    }
  });
}

/**
 * Per store: the spans before (locked) and after (from visits) of the pairs' subjects; writes the
 * changed ones and moves the store's span days. Only a subject with a merchant span can have had one.
 */
async function refreshStoreSpans(
  trx: Knex.Transaction,
  held: HeldWrites,
  pairs: StoreSubject[],
  merchantBefore: ReadonlyMap<string, MerchantSpan>,
): Promise<Map<string, Touched>> {
  const touched = new Map<string, Touched>();
  const subject = (merchantId: string, subjectId: string) => {
    const key = subjectKey({ merchantId, subjectId });
    if (!touched.has(key)) touched.set(key, { merchantId, subjectId, before: [], after: [] });
    return touched.get(key)!;
  };
  for (const [storeId, storePairs] of groupBy(pairs, (p) => p.storeId)) {
    const merchantId = storePairs[0].merchantId;
    for (const chunk of chunks([...new Set(storePairs.map((p) => p.subjectId))].sort())) {
      // A store span exists only with a merchant span: both are written in the same transactions.
      const seen = chunk.filter((subjectId) => merchantBefore.has(subjectKey({ merchantId, subjectId })));
      // Locking reads: current rows whatever the transaction's snapshot (as INSERT … SELECT reads).
      const before = seen.length === 0 ? [] : await held.read<SpanRow>(trx('analytics_store_subjects').where('store_id', storeId).whereIn('subject_id', seen)
        .forUpdate().select('subject_id', 'merchant_id', 'subject_kind', 'first_visit_at', 'last_visit_at', 'visits'));
      const after = (await held.read<SpanRow>(trx('visits').where('store_id', storeId).whereIn('subject_id', chunk).forShare()
        .groupBy('subject_id', 'merchant_id', 'subject_kind')
        .select('subject_id', 'merchant_id', 'subject_kind', trx.raw('MIN(started_at) AS first_visit_at'), trx.raw('MAX(started_at) AS last_visit_at'),
          trx.raw('COUNT(*) AS visits')))).map((r) => ({ ...r, visits: Number(r.visits) }));
      const beforeById = new Map(before.map((r) => [r.subject_id, r]));
      const kept = new Set(after.map((r) => r.subject_id));
      const gone = before.filter((r) => !kept.has(r.subject_id)).map((r) => r.subject_id);
      const statements: Statement[] = [];
      if (gone.length > 0) statements.push(trx('analytics_store_subjects').where('store_id', storeId).whereIn('subject_id', gone).delete());
      const changed = after.filter((r) => !sameSpan(beforeById.get(r.subject_id), r));
      if (changed.length > 0) {
        // The subject's first visit at the merchant, as the caller already wrote it.
        const merchantFirst = (r: SpanRow) =>
          trx.raw('(SELECT first_visit_at FROM analytics_subjects WHERE merchant_id = ? AND subject_id = ?)', [r.merchant_id, r.subject_id]);
        const insert = trx('analytics_store_subjects').insert(changed.map((r) => ({ store_id: storeId, ...r, merchant_first_visit_at: merchantFirst(r) }))).toSQL().toNative();
        statements.push(
          trx.raw(
            `${insert.sql} ON DUPLICATE KEY UPDATE first_visit_at = VALUES(first_visit_at), last_visit_at = VALUES(last_visit_at), visits = VALUES(visits),
             merchant_first_visit_at = VALUES(merchant_first_visit_at)`,
            [...insert.bindings] as Knex.RawBinding[],
          ),
        );
      }
      held.hold(...statements, ...spanDayMoves(trx, 'analytics_span_days', { store_id: storeId }, before, after));
      for (const r of before) subject(merchantId, r.subject_id).before.push(r);
      for (const r of after) subject(merchantId, r.subject_id).after.push(r);
    }
  }
  return touched;
}

const sameSpan = (a: SpanRow | undefined, b: SpanRow) =>
  a !== undefined && a.first_visit_at.getTime() === b.first_visit_at.getTime() && a.last_visit_at.getTime() === b.last_visit_at.getTime() && Number(a.visits) === b.visits;

/**
 * The touched subjects' merchant spans after the change (null: no visit left). Derived from the
 * span before and the store spans refreshed where that decides it; read from all the subject's
 * store spans where the first or last visit may now sit at a store not refreshed.
 */
async function merchantSpansAfter(
  trx: Knex.Transaction,
  held: HeldWrites,
  touched: Map<string, Touched>,
  before: ReadonlyMap<string, MerchantSpan>,
): Promise<Map<string, MerchantSpan | null>> {
  const after = new Map<string, MerchantSpan | null>();
  const unsure: Touched[] = [];
  for (const [key, t] of touched) {
    const span = derivedSpan(before.get(key) ?? null, t);
    if (span === undefined) unsure.push(t);
    else after.set(key, span);
  }
  const read = await readMerchantSpans(trx, held, unsure);
  for (const t of unsure) after.set(subjectKey(t), read.get(subjectKey(t)) ?? null);
  return after;
}

function derivedSpan(whole: MerchantSpan | null, { before, after }: Touched): MerchantSpan | null | undefined {
  const firsts = after.map((r) => r.first_visit_at.getTime());
  const lasts = after.map((r) => r.last_visit_at.getTime());
  if (whole === null) {
    // No visit before anywhere: the stores refreshed hold them all.
    return after.length === 0 ? null : { kind: after[0].subject_kind, first: new Date(Math.min(...firsts)), last: new Date(Math.max(...lasts)) };
  }
  if (whole.last === null) return undefined;
  const first = extreme(whole.first.getTime(), before.map((r) => r.first_visit_at.getTime()), firsts, -1);
  const last = extreme(whole.last.getTime(), before.map((r) => r.last_visit_at.getTime()), lasts, 1);
  return first === undefined || last === undefined ? undefined : { kind: whole.kind, first: new Date(first), last: new Date(last) };
}

/**
 * The merchant-wide earliest (direction -1) or latest (1) of the store values after the change,
 * from the merchant-wide value before and the refreshed stores' values before and after; undefined
 * when it could now sit at a store not refreshed (a refreshed store held it and now holds less).
 */
function extreme(whole: number, before: number[], after: number[], direction: -1 | 1): number | undefined {
  const best = after.length === 0 ? undefined : direction < 0 ? Math.min(...after) : Math.max(...after);
  const beyond = (a: number, b: number) => (direction < 0 ? a <= b : a >= b);
  if (!before.includes(whole)) return best !== undefined && beyond(best, whole) ? best : whole;
  return best !== undefined && beyond(best, whole) ? best : undefined;
}

const spanDayRow = (span: MerchantSpan | null): SpanDayRow[] =>
  span && span.last ? [{ subject_kind: span.kind, first_visit_at: span.first, last_visit_at: span.last }] : [];

/** The statements writing the subjects' merchant-wide last visit start (their rows exist and are locked). */
function lastVisitUpdates(trx: Knex.Transaction, merchantId: string, subjects: Touched[], after: ReadonlyMap<string, MerchantSpan | null>): Knex.Raw[] {
  return chunks(subjects).map((chunk) => {
    const lasts = chunk.flatMap((t) => [t.subjectId, after.get(subjectKey(t))?.last ?? null]);
    return trx.raw(
      `UPDATE analytics_subjects SET last_visit_at = CASE subject_id ${chunk.map(() => 'WHEN ? THEN ?').join(' ')} END
       WHERE merchant_id = ? AND subject_id IN (${chunk.map(() => '?').join(', ')})`,
      [...lasts, merchantId, ...chunk.map((t) => t.subjectId)],
    );
  });
}

/** The subjects' merchant-wide spans, from all their store spans (locked); a subject without any has none. */
async function readMerchantSpans(trx: Knex.Transaction, held: HeldWrites, subjects: { merchantId: string; subjectId: string }[]): Promise<Map<string, MerchantSpan>> {
  const spans = new Map<string, MerchantSpan>();
  for (const [merchantId, ofMerchant] of groupBy(subjects, (s) => s.merchantId)) {
    for (const chunk of chunks([...new Set(ofMerchant.map((s) => s.subjectId))].sort())) {
      const rows = await held.read<SpanDayRow & { subject_id: string }>(trx('analytics_store_subjects').where('merchant_id', merchantId).whereIn('subject_id', chunk)
        .forUpdate().groupBy('subject_id', 'subject_kind')
        .select('subject_id', 'subject_kind', trx.raw('MIN(first_visit_at) AS first_visit_at'), trx.raw('MAX(last_visit_at) AS last_visit_at')));
      for (const r of rows) spans.set(subjectKey({ merchantId, subjectId: r.subject_id }), { kind: r.subject_kind, first: r.first_visit_at, last: r.last_visit_at });
    }
  }
  return spans;
}

const utcDay = (t: Date) => t.toISOString().slice(0, 10);

/**
 * The statements that add the span-day counts (of `table`, for the store or merchant in `scope`) of
 * the spans `after` and take away those of `before`, in key order, and drop rows left at zero.
 */
function spanDayMoves(
  trx: Knex.Transaction, table: 'analytics_span_days' | 'analytics_merchant_span_days', scope: Record<string, string>, before: SpanDayRow[], after: SpanDayRow[],
): Statement[] {
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
  if (changed.length === 0) return [];
  const insert = trx(table).insert(changed.map((d) => ({ ...scope, ...d }))).toSQL().toNative();
  const statements: Statement[] = [
    trx.raw(`${insert.sql} ON DUPLICATE KEY UPDATE firsts = firsts + VALUES(firsts), lasts = lasts + VALUES(lasts)`, [...insert.bindings] as Knex.RawBinding[]),
  ];
  const shrunk = changed.filter((d) => d.firsts < 0 || d.lasts < 0);
  if (shrunk.length > 0) {
    statements.push(trx(table).where(scope).whereIn(['utc_day', 'subject_kind'], shrunk.map((d) => [d.utc_day, d.subject_kind])).where({ firsts: 0, lasts: 0 }).delete());
  }
  return statements;
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

/** The items grouped by key, in key order. */
function groupBy<T>(items: T[], keyOf: (item: T) => string): [string, T[]][] {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(keyOf(item), [...(groups.get(keyOf(item)) ?? []), item]);
  return [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
}

function chunks<T>(items: T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const DAY = 86_400_000;

/**
 * SQL expression: the number of the store's subjects with a visit starting in
 * [lo, hi). Those whose span meets the range are #(first < hi) - #(last < lo): span-day sums over
 * the days before, plus the span rows whose first (last) visit starts on hi's (lo's) UTC day before
 * hi (lo); less the spans that strictly contain the range without a visit inside (one index probe
 * each; none when the range reaches the store's latest visits). Bindings: storeDistinctBindings.
 */
export const storeDistinctSubjects = () =>
  `((SELECT COALESCE(SUM(CASE WHEN d.utc_day < ? THEN d.firsts ELSE 0 END) - SUM(CASE WHEN d.utc_day < ? THEN d.lasts ELSE 0 END), 0)
      FROM analytics_span_days d WHERE d.store_id = ? AND d.utc_day < ?)
    + (SELECT COUNT(*) FROM analytics_store_subjects s WHERE s.store_id = ? AND s.first_visit_at >= ? AND s.first_visit_at < ?)
    - (SELECT COUNT(*) FROM analytics_store_subjects s WHERE s.store_id = ? AND s.last_visit_at >= ? AND s.last_visit_at < ?)
    - (SELECT COUNT(*) FROM analytics_store_subjects s WHERE s.store_id = ? AND s.last_visit_at >= ? AND s.first_visit_at < ?
       AND NOT EXISTS (SELECT 1 FROM visits v WHERE v.store_id = s.store_id AND v.subject_id = s.subject_id AND v.started_at >= ? AND v.started_at < ?)))`;

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
