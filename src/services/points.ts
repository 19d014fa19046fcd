/**
 * Redeeming a member's points. The person row is locked first (as awardPerk does), so redemptions
 * and awards of one member are serialised: the balance checked is the balance debited, and it
 * never goes below zero. A request sent again with the same idempotency key finds the first
 * redemption under that lock and is answered with it, never debited twice.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Person } from '../../models/Person.js';
import { PointRedemption } from '../../models/PointRedemption.js';
import { recordAudit, type Actor } from '../storage/repositories/audit.js';
import { findRedemption, insertRedemption, lockBalance } from '../storage/repositories/points.js';
import { retryOnLockConflict } from '../storage/transactions.js';

export type RedemptionRequest = { person: Pick<Person, 'id' | 'merchantId'>; points: number; reason: string; idempotencyKey: string; actor: Actor };

export type RedemptionOutcome =
  | { outcome: 'redeemed' | 'replayed'; redemption: PointRedemption }
  | { outcome: 'insufficient_points'; balance: number }
  /** The key was used before for a different redemption. */
  | { outcome: 'key_reused'; redemption: PointRedemption }
  | { outcome: 'person_gone' };

export function redeemPoints(db: Knex, request: RedemptionRequest): Promise<RedemptionOutcome> {
  return retryOnLockConflict(
    () => db.transaction((trx) => redeemOnce(trx, request)),
    4,
    (attempt) => Math.random() * 10 * attempt,
  );
}

async function redeemOnce(trx: Knex.Transaction, request: RedemptionRequest): Promise<RedemptionOutcome> {
  const { person, actor } = request;
  const balance = await lockBalance(trx, person.id);
  if (balance === undefined) return { outcome: 'person_gone' };
  const earlier = await findRedemption(trx, person.id, request.idempotencyKey);
  if (earlier) {
    const same = earlier.points === request.points && earlier.reason === request.reason;
    return { outcome: same ? 'replayed' : 'key_reused', redemption: earlier };
  }
  if (request.points > balance) return { outcome: 'insufficient_points', balance };
  const redemption = PointRedemption.fromJson({
    id: randomUUID(),
    personId: person.id,
    points: request.points,
    reason: request.reason,
    idempotencyKey: request.idempotencyKey,
    balanceAfter: balance - request.points,
    redeemedAt: new Date(),
  });
  await insertRedemption(trx, redemption);
  await recordAudit(trx, {
    merchantId: person.merchantId,
    actor,
    action: 'points.redeemed',
    subject: { kind: 'member', id: person.id },
    details: { redemptionId: redemption.id, points: redemption.points },
  });
  return { outcome: 'redeemed', redemption };
}
