/** Suggested merges of a merchant's visitors: the list, best first, and dismissing a pair for good. */
import type Router from '@koa/router';
import { z } from 'zod';
import { SUBJECT_KINDS } from '../../gallery/gallery.js';
import { merchantScope } from '../../storage/repositories/principal.js';
import { dismissSuggestion, listSuggestions, type MergeSuggestion } from '../../storage/repositories/suggestions.js';
import type { RouteDeps } from '../app.js';
import { authorize } from '../auth.js';
import { notFound } from '../errors.js';
import { decodeCursor, listBody, pageQuery } from '../pagination.js';
import { parse, uuid } from '../validation.js';
import { listScope } from './visitors.js';

const suggestionsQuery = z.strictObject({ merchantId: uuid.optional(), storeId: uuid.optional(), ...pageQuery });
const suggestionsCursor = z.strictObject({ similarity: z.number(), id: uuid });
const subject = z.strictObject({ kind: z.enum(SUBJECT_KINDS), id: uuid });
const dismissalBody = z.strictObject({ a: subject, b: subject });

const suggestionView = (s: MergeSuggestion) => ({ id: s.id, a: s.a, b: s.b, similarity: s.similarity, storeIds: s.storeIds });

/** Registered before /v1/visitors/:id, which would take "suggestions" for an id. */
export function suggestionRoutes(router: Router, { db }: RouteDeps): void {
  router.get('/v1/visitors/suggestions', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const query = parse(suggestionsQuery, ctx.query, 'query');
    const merchantId = await listScope(db, principal, query);
    const after = decodeCursor(query.cursor, suggestionsCursor);
    const page = await listSuggestions(db, { merchantId, storeId: query.storeId, after, limit: query.limit });
    ctx.body = listBody(page, suggestionView);
  });

  router.post('/v1/visitors/suggestions/dismissals', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const pair = parse(dismissalBody, ctx.request.body, 'body');
    if (!(await dismissSuggestion(db, pair, merchantScope(principal)))) throw notFound('suggestion');
    ctx.status = 204;
  });
}
