/** The audit trail of changes to members' identity and points: a merchant's own entries, or all of them for an admin. */
import type Router from '@koa/router';
import { z } from 'zod';
import type { AuditEntry } from '../../../models/AuditEntry.js';
import { listAudit } from '../../storage/repositories/audit.js';
import type { RouteDeps } from '../app.js';
import { authorize } from '../auth.js';
import { notFound } from '../errors.js';
import { decodeCursor, listBody, pageQuery } from '../pagination.js';
import { parse, uuid } from '../validation.js';

const auditQuery = z.strictObject({ merchantId: uuid.optional(), ...pageQuery });
const auditCursor = z.strictObject({ id: z.number().int() });

const entryView = (e: AuditEntry) => ({
  id: Number(e.id),
  at: e.createdAt.toISOString(),
  merchantId: e.merchantId,
  actor: { keyId: e.actorKeyId, role: e.actorRole },
  action: e.action,
  subject: { kind: e.subjectKind, id: e.subjectId },
  details: e.details,
});

export function auditRoutes(router: Router, { db }: RouteDeps): void {
  router.get('/v1/audit', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const query = parse(auditQuery, ctx.query, 'query');
    if (principal.role === 'merchant' && query.merchantId !== undefined && query.merchantId !== principal.merchantId) throw notFound('merchant');
    const merchantId = principal.role === 'merchant' ? principal.merchantId : (query.merchantId ?? null);
    const page = await listAudit(db, { merchantId, afterId: decodeCursor(query.cursor, auditCursor)?.id, limit: query.limit });
    ctx.body = listBody(page, entryView);
  });
}
