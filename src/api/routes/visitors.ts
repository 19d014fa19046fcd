/** Anonymous returning visitors of a merchant: the list and one visitor with its visit history. */
import type Router from '@koa/router';
import { z } from 'zod';
import { findMerchant, findStore } from '../../storage/repositories/tenants.js';
import { findVisitor, listVisitors, VISITOR_SORTS, type VisitorSort, type VisitorSummary } from '../../storage/repositories/visitors.js';
import type { RouteDeps } from '../app.js';
import { actingMerchant, authorize, type Principal } from '../auth.js';
import { ApiError, notFound } from '../errors.js';
import { decodeCursor, listBody, pageQuery } from '../pagination.js';
import { idParams, parse, uuid } from '../validation.js';
import { moveVisitor } from '../../services/identity.js';
import { answering, identityDeps } from './identity-changes.js';
import { visitHistory, visitHistoryQuery } from './visit-history.js';

const listVisitorsQuery = z.strictObject({
  merchantId: uuid.optional(),
  storeId: uuid.optional(),
  sort: z.enum(VISITOR_SORTS).default('lastSeen'),
  ...pageQuery,
});
/** A cursor continues the order it was made in: a visit count for sort=visits, a time otherwise. */
const visitorsCursor = (sort: VisitorSort) => z.strictObject({ value: sort === 'visits' ? z.number().int() : z.iso.datetime(), id: uuid });

const mergeBody = z.strictObject({ into: uuid });

const visitorView = (v: VisitorSummary) => ({
  id: v.id,
  visits: v.visits,
  firstSeenAt: v.firstSeenAt.toISOString(),
  lastSeenAt: v.lastSeenAt.toISOString(),
  storeIds: v.storeIds,
});

/**
 * The merchant a visitor list is read for (the caller's, or the one an admin names), checked with
 * the store that narrows it, if any: 404 for another tenant's.
 */
export async function listScope(db: RouteDeps['db'], principal: Extract<Principal, { role: 'admin' | 'merchant' }>, query: { merchantId?: string; storeId?: string }): Promise<string> {
  const merchantId = actingMerchant(principal, query.merchantId);
  if (!(await findMerchant(db, merchantId, principal))) throw notFound('merchant');
  if (query.storeId !== undefined) {
    const store = await findStore(db, query.storeId, principal);
    if (!store || store.merchantId !== merchantId) throw notFound('store');
  }
  return merchantId;
}

export function visitorRoutes(router: Router, deps: RouteDeps): void {
  const { db } = deps;
  router.get('/v1/visitors', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const query = parse(listVisitorsQuery, ctx.query, 'query');
    const merchantId = await listScope(db, principal, query);
    const after = decodeCursor(query.cursor, visitorsCursor(query.sort));
    const page = await listVisitors(db, { merchantId, storeId: query.storeId, sort: query.sort, after, limit: query.limit });
    ctx.body = listBody(page, visitorView);
  });

  /**
   * The visitor, and a page of its visits (latest first) as `history`, paged by ?cursor=&limit=.
   * A visitor merged or linked away answers 404 with `movedTo`: the subject it became part of.
   */
  router.get('/v1/visitors/:id', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(idParams, ctx.params, 'path');
    const query = parse(visitHistoryQuery, ctx.query, 'query');
    const visitor = await visitorInPath(id, principal);
    const history = await visitHistory(db, { merchantId: visitor.merchantId, kind: 'visitor', id }, query);
    ctx.body = { ...visitorView(visitor), merchantId: visitor.merchantId, history };
  });

  /** Two visitors that are one person become one: this one's sightings, visits and vectors go to `into`. */
  router.post('/v1/visitors/:id/merge', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(idParams, ctx.params, 'path');
    const { into } = parse(mergeBody, ctx.request.body, 'body');
    const source = await findVisitor(db, id, principal);
    // Sent again after a gallery outage, the merge finishes: the visitor already points at `into`.
    if (!source || ('movedTo' in source && source.movedTo.id !== into)) throw notFound('visitor');
    const survivor = await visitorInPath(into, principal);
    if (survivor.merchantId !== source.merchantId) throw notFound('visitor');
    const identity = identityDeps(deps);
    const { auditId } = await answering(() => moveVisitor(identity, principal, { merchantId: source.merchantId, visitorId: id, into: { kind: 'visitor', id: into } }));
    const merged = await visitorInPath(into, principal);
    ctx.body = { visitor: { ...visitorView(merged), merchantId: merged.merchantId }, auditId };
  });

  async function visitorInPath(id: string, principal: Principal): Promise<VisitorSummary & { merchantId: string }> {
    const visitor = await findVisitor(db, id, principal);
    if (!visitor) throw notFound('visitor');
    if ('movedTo' in visitor) throw new ApiError(404, 'not_found', `visitor merged into ${visitor.movedTo.kind} ${visitor.movedTo.id}`, { movedTo: visitor.movedTo });
    return visitor;
  }
}
