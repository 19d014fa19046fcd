/** A face's crop, for merchants that keep them (src/services/face-crops.ts). */
import type Router from '@koa/router';
import { readFaceCrop } from '../../services/face-crops.js';
import type { RouteDeps } from '../app.js';
import { authorize } from '../auth.js';
import { notFound } from '../errors.js';
import { idParams, parse } from '../validation.js';

export function faceRoutes(router: Router, { db, blobs }: RouteDeps): void {
  /** A captured or enrolled face's 112x112 aligned crop; 404 when none was kept. */
  router.get('/v1/faces/:id/crop', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(idParams, ctx.params, 'path');
    const crop = await readFaceCrop({ db, blobs }, id, principal);
    if (!crop) throw notFound('face crop');
    ctx.type = 'image/jpeg';
    ctx.set('Cache-Control', 'private, no-store');
    ctx.body = crop;
  });
}
