/** Anonymous visitors' rows: created by the match stage, listed and read by the API. */
import type { Knex } from 'knex';
import { withNamedLock } from '../named-lock.js';
import { pageOf, type Page } from './keyset.js';
import { merchantScope, type Principal } from './principal.js';
import type { SubjectKind } from '../../gallery/gallery.js';

/** How long a match job waits for another one creating visitors at the same merchant. */
const VISITOR_LOCK_WAIT_SECONDS = 30;

export class VisitorRepository {
  constructor(private readonly db: Knex) {}

  /**
   * Runs `create` holding a per-merchant MySQL named lock, so two match workers cannot both decide
   * that one new face needs a new visitor: the second waits, searches again, and finds the first's.
   */
  async withVisitorLock<T>(merchantId: string, create: () => Promise<T>): Promise<T> {
    const name = `faceperks:visitors:${merchantId}`;
    const outcome = await withNamedLock(this.db, name, VISITOR_LOCK_WAIT_SECONDS, create);
    if (!outcome.acquired) throw new Error(`timed out waiting for ${name}`);
    return outcome.value;
  }

  async createVisitors(ids: string[], merchantId: string, seenAt: Date): Promise<void> {
    await this.db('visitors')
      .insert(ids.map((id) => ({ id, merchant_id: merchantId, first_seen_at: seenAt, last_seen_at: seenAt })))
      .onConflict('id')
      .ignore();
  }

  async existingVisitors(ids: string[]): Promise<Set<string>> {
    const rows: { id: string }[] = await this.db('visitors').whereIn('id', ids).select('id');
    return new Set(rows.map((row) => row.id));
  }
}

export const VISITOR_SORTS = ['visits', 'lastSeen'] as const;
export type VisitorSort = (typeof VISITOR_SORTS)[number];

/** A visitor and its visits: counted at one store when the list is filtered by store. */
export type VisitorSummary = { id: string; visits: number; firstSeenAt: Date; lastSeenAt: Date; storeIds: string[] };

/** Where a page of visitors continues: the last row's sort value and id. */
export type VisitorKeyset = { value: string | number; id: string };

export type VisitorFilter = { merchantId: string; storeId?: string; sort: VisitorSort; after?: VisitorKeyset; limit: number };

/**
 * A merchant's visitors, most visits or most recently seen first, ties by id (descending); with
 * `storeId`, only those who visited that store, and their visits there. By last seen, a page is
 * read from the visitors index and only its visitors' visits are counted; by visits, every
 * visitor's visits are counted first (the order needs them).
 */
export async function listVisitors(db: Knex, filter: VisitorFilter): Promise<Page<VisitorSummary>> {
  const rows = filter.sort === 'visits' ? await pageByVisits(db, filter) : await pageByLastSeen(db, filter);
  const counts = filter.sort === 'visits' ? null : await visitCounts(db, filter, rows.map((r) => r.id));
  const stores = await storesVisited(db, filter.merchantId, rows.map((r) => r.id));
  const summaries = rows.map((r) => ({
    id: r.id,
    visits: counts ? (counts.get(r.id) ?? 0) : Number(r.visits),
    firstSeenAt: r.first_seen_at,
    lastSeenAt: r.last_seen_at,
    storeIds: stores.get(r.id) ?? [],
  }));
  return pageOf(summaries, filter.limit, (v) => ({ value: filter.sort === 'visits' ? v.visits : v.lastSeenAt.toISOString(), id: v.id }));
}

type VisitorRow = { id: string; first_seen_at: Date; last_seen_at: Date; visits?: number | string };

/** Visits at the merchant's stores, or at one of them. */
function visitsAt(db: Knex, where: { merchantId: string; storeId?: string }) {
  const visits = db('visits').where('merchant_id', where.merchantId);
  if (where.storeId !== undefined) visits.where('store_id', where.storeId);
  return visits;
}

async function pageByLastSeen(db: Knex, filter: VisitorFilter): Promise<VisitorRow[]> {
  const query = db('visitors as v').where('v.merchant_id', filter.merchantId).whereNull('v.merged_into_id').select('v.id', 'v.first_seen_at', 'v.last_seen_at');
  if (filter.storeId !== undefined) {
    query.whereExists(db('visits').where('store_id', filter.storeId).whereRaw('visits.subject_id = v.id').select(db.raw('1')));
  }
  const after = filter.after;
  if (after) {
    const at = new Date(after.value);
    query.where((w) => w.where('v.last_seen_at', '<', at).orWhere((same) => same.where('v.last_seen_at', at).where('v.id', '<', after.id)));
  }
  return query.orderBy('v.last_seen_at', 'desc').orderBy('v.id', 'desc').limit(filter.limit + 1);
}

async function pageByVisits(db: Knex, filter: VisitorFilter): Promise<VisitorRow[]> {
  const counts = visitsAt(db, filter).groupBy('subject_id').select('subject_id', db.raw('COUNT(*) AS visits'));
  const query = db('visitors as v')
    .where('v.merchant_id', filter.merchantId)
    .whereNull('v.merged_into_id')
    .select('v.id', 'v.first_seen_at', 'v.last_seen_at', db.raw('COALESCE(c.visits, 0) AS visits'));
  if (filter.storeId !== undefined) query.join(counts.as('c'), 'c.subject_id', 'v.id');
  else query.leftJoin(counts.as('c'), 'c.subject_id', 'v.id');
  const after = filter.after;
  if (after) {
    query.where((w) =>
      w.whereRaw('COALESCE(c.visits, 0) < ?', [after.value]).orWhere((same) => same.whereRaw('COALESCE(c.visits, 0) = ?', [after.value]).where('v.id', '<', after.id)),
    );
  }
  return query.orderByRaw('COALESCE(c.visits, 0) DESC').orderBy('v.id', 'desc').limit(filter.limit + 1);
}

/** How many visits each of these visitors made (at one store, if named). */
async function visitCounts(db: Knex, where: { merchantId: string; storeId?: string }, ids: string[]): Promise<Map<string, number>> {
  if (ids.length === 0) return new Map();
  const rows: { subject_id: string; visits: number | string }[] = await visitsAt(db, where)
    .whereIn('subject_id', ids)
    .groupBy('subject_id')
    .select('subject_id', db.raw('COUNT(*) AS visits'));
  return new Map(rows.map((r) => [r.subject_id, Number(r.visits)]));
}

/** Where a visitor merged or linked away went. */
export type MovedVisitor = { merchantId: string; movedTo: { kind: SubjectKind; id: string } };

/**
 * The visitor if the principal's merchant owns it (devices never read visitors); one merged or
 * linked away answers where it went instead.
 */
export async function findVisitor(db: Knex, id: string, principal: Principal): Promise<(VisitorSummary & { merchantId: string }) | MovedVisitor | undefined> {
  if (principal.role === 'device') return undefined;
  const query = db('visitors').where('id', id).first('id', 'merchant_id', 'first_seen_at', 'last_seen_at', 'merged_into_kind', 'merged_into_id');
  const scope = merchantScope(principal);
  if (scope !== null) query.where('merchant_id', scope);
  const row = await query;
  if (!row) return undefined;
  if (row.merged_into_id) return { merchantId: row.merchant_id, movedTo: { kind: row.merged_into_kind, id: row.merged_into_id } };
  const counts = await visitCounts(db, { merchantId: row.merchant_id }, [id]);
  const stores = await storesVisited(db, row.merchant_id, [id]);
  return {
    id,
    merchantId: row.merchant_id,
    visits: counts.get(id) ?? 0,
    firstSeenAt: row.first_seen_at,
    lastSeenAt: row.last_seen_at,
    storeIds: stores.get(id) ?? [],
  };
}

/** The stores each subject visited, by subject id. */
async function storesVisited(db: Knex, merchantId: string, subjectIds: string[]): Promise<Map<string, string[]>> {
  if (subjectIds.length === 0) return new Map();
  const rows: { subject_id: string; store_id: string }[] = await db('visits')
    .where('merchant_id', merchantId)
    .whereIn('subject_id', subjectIds)
    .distinct('subject_id', 'store_id')
    .orderBy('store_id');
  const stores = new Map<string, string[]>();
  for (const row of rows) stores.set(row.subject_id, [...(stores.get(row.subject_id) ?? []), row.store_id]);
  return stores;
}
