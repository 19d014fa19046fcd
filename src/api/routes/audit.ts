/** The audit trail of changes to members' identity and points: a merchant's own entries, or all of them for an admin. */
import type Router from '@koa/router';
import { z } from 'zod';
import type { AuditEntry } from '../../../models/AuditEntry.js';
import { findAuditEntry, listAudit } from '../../storage/repositories/audit.js';
import { merchantScope } from '../../storage/repositories/principal.js';
import { undoChange } from '../../services/identity.js';
import { answering, identityDeps } from './identity-changes.js';
import type { RouteDeps } from '../app.js';
import { authorize } from '../auth.js';
import { notFound } from '../errors.js';
import { decodeCursor, listBody, pageQuery } from '../pagination.js';
import { parse, uuid } from '../validation.js';

const auditQuery = z.strictObject({ merchantId: uuid.optional(), ...pageQuery });
const auditCursor = z.strictObject({ id: z.number().int() });
const auditParams = z.object({ id: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER) });

const entryView = (e: AuditEntry) => ({
  id: Number(e.id),
  at: e.createdAt.toISOString(),
  merchantId: e.merchantId,
  actor: { keyId: e.actorKeyId, role: e.actorRole },
  action: e.action,
  subject: { kind: e.subjectKind, id: e.subjectId },
  details: e.details,
});

export function auditRoutes(router: Router, deps: RouteDeps): void {
  const { db } = deps;
  router.get('/v1/audit', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const query = parse(auditQuery, ctx.query, 'query');
    if (principal.role === 'merchant' && query.merchantId !== undefined && query.merchantId !== principal.merchantId) throw notFound('merchant');
    const merchantId = principal.role === 'merchant' ? principal.merchantId : (query.merchantId ?? null);
    const page = await listAudit(db, { merchantId, afterId: decodeCursor(query.cursor, auditCursor)?.id, limit: query.limit });
    ctx.body = listBody(page, entryView);
  });

  /** Undoes a merge or a link (see services/identity.ts): 409 undo_stale once the subjects changed again. */
  router.post('/v1/audit/:id/undo', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(auditParams, ctx.params, 'path');
    // Another tenant's entry is a 404 before anything else, a gallery outage's 503 included.
    if (!(await findAuditEntry(db, id, merchantScope(principal)))) throw notFound('audit entry');
    const identity = identityDeps(deps);
    ctx.body = await answering(() => undoChange(identity, principal, { auditId: id, merchantId: merchantScope(principal) }));
  });
}
