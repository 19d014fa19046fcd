/** "Not this person": a recognised face is not the member (or visitor) it was matched to. */
import type Router from '@koa/router';
import { rejectFace } from '../../services/face-rejection.js';
import { merchantScope } from '../../storage/repositories/principal.js';
import { findMatchedFace } from '../../storage/repositories/rejections.js';
import type { RouteDeps } from '../app.js';
import { authorize } from '../auth.js';
import { notFound } from '../errors.js';
import { idParams, parse } from '../validation.js';
import { answering, galleryOf } from './identity-changes.js';

export function faceRejectionRoutes(router: Router, deps: RouteDeps): void {
  /** The face leaves its subject and becomes a visitor; answers the subject it now belongs to. */
  router.post('/v1/faces/:id/reject', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(idParams, ctx.params, 'path');
    const face = await findMatchedFace(deps.db, id, merchantScope(principal));
    if (!face) throw notFound('face');
    const rejection = { db: deps.db, gallery: galleryOf(deps), visitGapMinutes: deps.config.VISIT_GAP_MINUTES, visitorThreshold: deps.config.VISITOR_THRESHOLD };
    const outcome = await answering(() => rejectFace(rejection, principal, face));
    ctx.body = { faceId: face.id, subject: outcome.subject, auditId: outcome.auditId };
  });
}
