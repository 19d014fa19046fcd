/** Operator actions: re-run captures through the pipeline (after a model or threshold change). */
import type Router from '@koa/router';
import { z } from 'zod';
import { reprocessCaptures } from '../../services/reprocess.js';
import { findBatch } from '../../storage/repositories/captures.js';
import { findStore } from '../../storage/repositories/tenants.js';
import type { RouteDeps } from '../app.js';
import { authorize } from '../auth.js';
import { ApiError, notFound } from '../errors.js';
import { isoInstant, parse, uuid } from '../validation.js';

const MAX_RANGE_DAYS = 366;

const reprocessBody = z.union([
  z.strictObject({ batchId: uuid }),
  z.strictObject({ storeId: uuid, from: isoInstant, to: isoInstant }),
]);

export function operationRoutes(router: Router, { db, queues }: RouteDeps): void {
  /** 202 {queued, imageGone}: captures whose stored image was already deleted (KEEP_IMAGES=false) cannot re-run. */
  router.post('/v1/reprocess', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const body = parse(reprocessBody, ctx.request.body, 'body');
    let outcome;
    if ('batchId' in body) {
      const batch = await findBatch(db, body.batchId, principal);
      if (!batch) throw notFound('batch');
      outcome = await reprocessCaptures({ db, queues }, { batchId: body.batchId });
    } else {
      const store = await findStore(db, body.storeId, principal);
      if (!store) throw notFound('store');
      const [from, to] = [new Date(body.from), new Date(body.to)];
      if (!(from < to) || to.getTime() - from.getTime() > MAX_RANGE_DAYS * 86_400_000) {
        throw new ApiError(400, 'validation_error', `from must be before to, at most ${MAX_RANGE_DAYS} days apart`);
      }
      outcome = await reprocessCaptures({ db, queues }, { storeId: store.id, from, to });
    }
    ctx.status = 202;
    ctx.body = outcome;
  });
}
