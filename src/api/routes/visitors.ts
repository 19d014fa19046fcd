/** Anonymous returning visitors of a merchant: the list and one visitor with its visit history. */
import type Router from '@koa/router';
import { z } from 'zod';
import { findMerchant, findStore } from '../../storage/repositories/tenants.js';
import { findVisitor, listVisitors, VISITOR_SORTS, type VisitorSort, type VisitorSummary } from '../../storage/repositories/visitors.js';
import type { RouteDeps } from '../app.js';
import { actingMerchant, authorize } from '../auth.js';
import { notFound } from '../errors.js';
import { decodeCursor, listBody, pageQuery } from '../pagination.js';
import { idParams, parse, uuid } from '../validation.js';
import { visitHistory, visitHistoryQuery } from './visit-history.js';

const listVisitorsQuery = z.strictObject({
  merchantId: uuid.optional(),
  storeId: uuid.optional(),
  sort: z.enum(VISITOR_SORTS).default('lastSeen'),
  ...pageQuery,
});
/** A cursor continues the order it was made in: a visit count for sort=visits, a time otherwise. */
const visitorsCursor = (sort: VisitorSort) => z.strictObject({ value: sort === 'visits' ? z.number().int() : z.iso.datetime(), id: uuid });

const visitorView = (v: VisitorSummary) => ({
  id: v.id,
  visits: v.visits,
  firstSeenAt: v.firstSeenAt.toISOString(),
  lastSeenAt: v.lastSeenAt.toISOString(),
  storeIds: v.storeIds,
});

export function visitorRoutes(router: Router, { db }: RouteDeps): void {
  router.get('/v1/visitors', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const query = parse(listVisitorsQuery, ctx.query, 'query');
    const merchantId = actingMerchant(principal, query.merchantId);
    if (!(await findMerchant(db, merchantId, principal))) throw notFound('merchant');
    if (query.storeId !== undefined) {
      const store = await findStore(db, query.storeId, principal);
      if (!store || store.merchantId !== merchantId) throw notFound('store');
    }
    const after = decodeCursor(query.cursor, visitorsCursor(query.sort));
    const page = await listVisitors(db, { merchantId, storeId: query.storeId, sort: query.sort, after, limit: query.limit });
    ctx.body = listBody(page, visitorView);
  });

  /** The visitor, and a page of its visits (latest first) as `history`, paged by ?cursor=&limit=. */
  router.get('/v1/visitors/:id', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(idParams, ctx.params, 'path');
    const query = parse(visitHistoryQuery, ctx.query, 'query');
    const visitor = await findVisitor(db, id, principal);
    if (!visitor) throw notFound('visitor');
    const history = await visitHistory(db, { merchantId: visitor.merchantId, kind: 'visitor', id }, query);
    ctx.body = { ...visitorView(visitor), merchantId: visitor.merchantId, history };
  });
}
