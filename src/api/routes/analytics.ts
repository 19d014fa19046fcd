/**
 * Merchant analytics API (merchant key: its own stores; admin: all; device: 403).
 * Mount: app.use(analyticsRoutes({ db, config }).routes()) after `authenticate`.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Config } from '../../config.js';
import { answerJson } from '../../services/analytics/bucket-list.js';
import { AnswerCache, merchantStoresVersion, storeVersion } from '../../services/analytics/cache.js';
import {
  decodeSummaryCursor, demographics, merchantPoints, merchantSummary, peakHours, recognitions, SUMMARY_MAX_STORES, traffic, visitors,
  type Range, type StoreRef,
} from '../../services/analytics/query.js';
import { zone, type Interval } from '../../services/analytics/time.js';
import { findMerchant, findStore } from '../../storage/repositories/tenants.js';
import { authorize } from '../auth.js';
import { ApiError, notFound } from '../errors.js';
import { idParams, parse } from '../validation.js';

const DAY = 86_400_000;
const MAX_RANGE_DAYS = 366;

const instant = z.string().trim().min(1).max(40);
const rangeQuery = z.object({
  from: instant.optional(),
  to: instant.optional(),
  interval: z.string().optional(),
  format: z.enum(['json', 'csv']).optional(),
});

const badRequest = (message: string) => new ApiError(400, 'validation_error', message);

/** The summary lists at most SUMMARY_MAX_STORES stores at once; `cursor` is the previous answer's nextCursor. */
const summaryPageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(SUMMARY_MAX_STORES).optional(),
  cursor: z.string().max(2000).optional(),
});

/** ISO-8601 instant; a bare date (YYYY-MM-DD) means that day's local midnight in the store's zone. */
function parseInstant(value: string, name: string, timezone: string): number {
  const dateOnly = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (dateOnly) {
    const utcNoon = Date.UTC(Number(dateOnly[1]), Number(dateOnly[2]) - 1, Number(dateOnly[3]), 12);
    if (Number.isNaN(utcNoon) || new Date(utcNoon).toISOString().slice(0, 10) !== value) throw badRequest(`invalid query: ${name}: not a date`);
    const z = zone(timezone);
    return z.dayStart(utcNoon - z.offset(utcNoon));
  }
  const fields = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(:(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i.exec(value);
  if (!fields) {
    throw badRequest(`invalid query: ${name}: must be an ISO-8601 instant with an offset, e.g. 2026-03-01T00:00:00Z, or a date YYYY-MM-DD`);
  }
  const [year, month, day, hour, minute, second = 0] = [1, 2, 3, 4, 5, 7].map((i) => Number(fields[i] ?? 0));
  // Date.parse rolls an impossible date over (February 30th becomes March 2nd): refuse it instead.
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const t = Date.parse(value);
  if (Number.isNaN(t) || month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) {
    throw badRequest(`invalid query: ${name}: ${value} is not a valid instant`);
  }
  return t;
}

export function parseRange(query: unknown, timezone: string, now = Date.now()): Range & { format: 'json' | 'csv' } {
  const q = parse(rangeQuery, query, 'query');
  const intervalRaw = q.interval ?? 'hour';
  if (intervalRaw !== 'hour' && intervalRaw !== 'day') throw badRequest('invalid query: interval: must be "hour" or "day"');
  const interval: Interval = intervalRaw;
  const to = q.to !== undefined ? parseInstant(q.to, 'to', timezone) : now;
  const from = q.from !== undefined ? parseInstant(q.from, 'from', timezone) : to - (interval === 'hour' ? 7 : 30) * DAY;
  if (!(from < to)) throw badRequest('invalid query: from must be before to');
  if (to - from > MAX_RANGE_DAYS * DAY) throw badRequest(`invalid query: the range is longer than ${MAX_RANGE_DAYS} days`);
  return { from, to, interval, format: q.format ?? 'json' };
}

// ---- CSV -------------------------------------------------------------------------------------
const csvCell = (v: unknown): string => {
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  const s = v === null || v === undefined ? '' : String(v);
  const safe = /^[=+\-@\t\r]/.test(s) && !/^-?\d/.test(s) ? `'${s}` : s; // no spreadsheet formulas
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
};
function flatten(obj: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [k, v] of Object.entries(obj)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) flatten(v as Record<string, unknown>, `${prefix}${k}.`, out);
    else out[`${prefix}${k}`] = v;
  }
  return out;
}
/** Rows of one shape (nested objects become dotted columns), header from the first row. */
export function toCsv(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '\r\n';
  const first = flatten(rows[0]);
  const header = Object.keys(first);
  const nested = header.some((h) => h.includes('.'));
  const lines = new Array<string>(rows.length + 1);
  lines[0] = header.map(csvCell).join(',');
  for (let i = 0; i < rows.length; i++) {
    const row = nested ? flatten(rows[i]) : rows[i];
    let line = '';
    for (let j = 0; j < header.length; j++) line += (j ? ',' : '') + csvCell(row[header[j]]);
    lines[i + 1] = line;
  }
  return lines.join('\r\n') + '\r\n';
}

function respond(ctx: Context, format: 'json' | 'csv', body: unknown, rows: () => Record<string, unknown>[], name: string) {
  ctx.set('Cache-Control', 'private, no-store');
  if (format === 'csv') {
    ctx.type = 'text/csv; charset=utf-8';
    ctx.set('Content-Disposition', `attachment; filename="${name}.csv"`);
    ctx.body = toCsv(rows());
  } else {
    ctx.body = body;
  }
}

/** Sends an already serialised answer (JSON or CSV, UTF-8) with the headers `respond` would set. */
function respondSerialised(ctx: Context, format: 'json' | 'csv', answer: Buffer, name: string) {
  ctx.set('Cache-Control', 'private, no-store');
  if (format === 'csv') {
    ctx.type = 'text/csv; charset=utf-8';
    ctx.set('Content-Disposition', `attachment; filename="${name}.csv"`);
  } else {
    ctx.type = 'application/json; charset=utf-8';
  }
  ctx.body = answer;
}

/** Bytes of serialised answers kept per process (a year of hourly buckets is ~1.5 MB). */
const CACHE_BYTES = 96 * 1024 * 1024;

/** `cacheBytes: 0` turns the answer cache off (the benchmark measures both ways). */
export function analyticsRoutes(deps: { db: Knex; config: Config; cacheBytes?: number }): Router {
  const { db } = deps;
  const router = new Router();
  const cacheBytes = deps.cacheBytes ?? CACHE_BYTES;
  const answers = new AnswerCache<Buffer>(cacheBytes);
  const summaries = new AnswerCache<Awaited<ReturnType<typeof merchantSummary>>>(cacheBytes / 16);

  /**
   * A store endpoint's answer, serialised, from the cache when the store's data has not changed
   * since it was computed (see services/analytics/cache.ts).
   */
  function storeEndpoint<B extends object>(
    kind: string,
    compute: (store: StoreRef, range: Range) => Promise<B>,
    rows: (body: B) => Record<string, unknown>[],
  ) {
    return async (ctx: Context) => {
      const store = await visibleStore(ctx);
      const range = parseRange(ctx.query, store.timezone);
      const name = `${kind}-${store.id}`;
      const version = await storeVersion(db, store.id);
      const key = `${kind}|${store.id}|${store.timezone}|${version}|${range.from}|${range.to}|${range.interval}|${range.format}`;
      let answer = answers.get(key);
      if (answer === undefined) {
        const body = await compute(store, range);
        // Encoded once: Koa sends a Buffer as it is, where it measures and encodes a string on every send.
        answer = Buffer.from(range.format === 'csv' ? toCsv(rows(body)) : answerJson(body));
        answers.set(key, answer, answer.length);
      }
      respondSerialised(ctx, range.format, answer, name);
    };
  }

  /** The store if the caller may see it: admin any, merchant its own (others 404), device 403. */
  async function visibleStore(ctx: Context): Promise<StoreRef> {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(idParams, ctx.params, 'path');
    const store = await findStore(db, id, principal);
    if (!store) throw notFound('store');
    return { id: store.id, merchantId: store.merchantId, name: store.name, timezone: store.timezone };
  }

  router.get('/v1/stores/:id/analytics/traffic', storeEndpoint('traffic', (store, range) => traffic(db, store, range), (b) => b.buckets.objects()));
  router.get('/v1/stores/:id/analytics/demographics', storeEndpoint('demographics', (store, range) => demographics(db, store, range), (b) => b.buckets.objects()));
  router.get('/v1/stores/:id/analytics/visitors', storeEndpoint('visitors', (store, range) => visitors(db, store, range), (b) => b.buckets.objects()));
  router.get('/v1/stores/:id/analytics/peak-hours', storeEndpoint('peak-hours', (store, range) => peakHours(db, store, range), (b) => b.cells));

  router.get('/v1/merchants/:id/analytics/summary', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(idParams, ctx.params, 'path');
    const merchant = await findMerchant(db, id, principal);
    if (!merchant) throw notFound('merchant');
    const range = parseRange({ ...ctx.query, interval: ctx.query.interval ?? 'day' }, 'UTC');
    const q = parse(summaryPageQuery, ctx.query, 'query');
    const after = q.cursor === undefined ? undefined : decodeSummaryCursor(q.cursor);
    if (q.cursor !== undefined && !after) throw badRequest('invalid query: cursor: not a cursor this endpoint returned');
    const page = { limit: q.limit ?? SUMMARY_MAX_STORES, after };
    const key = `${merchant.id}|${merchant.name}|${range.from}|${range.to}|${page.limit}|${q.cursor ?? ''}|${await merchantStoresVersion(db, merchant.id)}`;
    let body = summaries.get(key);
    if (body === undefined) {
      body = await merchantSummary(db, { id: merchant.id, name: merchant.name }, range, page);
      summaries.set(key, body, key.length + 200 * body.stores.length);
    } else {
      // perk awards go with their member on erasure, which bumps no store version: always fresh
      const points = await merchantPoints(db, merchant.id, Date.parse(body.from), range.to);
      body = { ...body, totals: { ...body.totals, pointsAwarded: points } };
    }
    const summary = body;
    respond(ctx, range.format, summary, () => summary.stores, `summary-${merchant.id}`);
  });

  const recognitionsQuery = z.object({
    since: instant.optional(),
    limit: z.coerce.number().int().min(1).max(1000).optional(),
    format: z.enum(['json', 'csv']).optional(),
  });
  router.get('/v1/stores/:id/recognitions', async (ctx) => {
    const store = await visibleStore(ctx);
    const q = parse(recognitionsQuery, ctx.query, 'query');
    const since = q.since !== undefined ? parseInstant(q.since, 'since', store.timezone) : Date.now() - DAY;
    const body = await recognitions(db, store, since, q.limit ?? 100);
    respond(ctx, q.format ?? 'json', body, () => body.recognitions, `recognitions-${store.id}`);
  });

  return router;
}
