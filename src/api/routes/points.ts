/** A member's points: the history of awards and redemptions with the balance, and redeeming. */
import type Router from '@koa/router';
import { z } from 'zod';
import type { PointRedemption } from '../../../models/PointRedemption.js';
import { redeemPoints } from '../../services/points.js';
import { listLedger } from '../../storage/repositories/points.js';
import type { RouteDeps } from '../app.js';
import { ApiError, notFound } from '../errors.js';
import { decodeCursor, listBody, pageQuery } from '../pagination.js';
import { idempotencyKeyField, parse, reasonField } from '../validation.js';
import { memberInPath } from './member-in-path.js';

const ledgerQuery = z.strictObject(pageQuery);
const ledgerCursor = z.strictObject({ at: z.iso.datetime(), id: z.string().uuid() });

const MAX_REDEMPTION = 1_000_000;
const redemptionBody = z.strictObject({
  points: z.number().int().min(1).max(MAX_REDEMPTION),
  reason: reasonField,
  idempotencyKey: idempotencyKeyField,
});

const redemptionView = (r: PointRedemption) => ({
  id: r.id,
  personId: r.personId,
  points: r.points,
  reason: r.reason,
  idempotencyKey: r.idempotencyKey,
  balance: r.balanceAfter,
  redeemedAt: r.redeemedAt.toISOString(),
});

export function pointRoutes(router: Router, { db }: RouteDeps): void {
  router.get('/v1/people/:id/points', async (ctx) => {
    const { person } = await memberInPath(ctx, db);
    const query = parse(ledgerQuery, ctx.query, 'query');
    const page = await listLedger(db, person.id, { after: decodeCursor(query.cursor, ledgerCursor), limit: query.limit });
    ctx.body = {
      balance: person.points,
      ...listBody(page, (e) => ({ id: e.id, kind: e.kind, points: e.points, at: e.at.toISOString(), storeId: e.storeId, captureId: e.captureId, reason: e.reason })),
    };
  });

  router.post('/v1/people/:id/redemptions', async (ctx) => {
    const { person, principal } = await memberInPath(ctx, db);
    const body = parse(redemptionBody, ctx.request.body, 'body');
    const result = await redeemPoints(db, { person, ...body, actor: principal });
    switch (result.outcome) {
      case 'redeemed':
        ctx.status = 201;
        ctx.body = redemptionView(result.redemption);
        return;
      case 'replayed':
        ctx.status = 200;
        ctx.body = redemptionView(result.redemption);
        return;
      case 'insufficient_points':
        throw new ApiError(422, 'insufficient_points', `the member has ${result.balance} points, fewer than the ${body.points} asked`, { balance: result.balance });
      case 'key_reused':
        throw new ApiError(409, 'idempotency_key_reused', 'this idempotencyKey was used for a different redemption (points or reason)', { redemption: redemptionView(result.redemption) });
      case 'person_gone':
        throw notFound('person');
    }
  });
}
