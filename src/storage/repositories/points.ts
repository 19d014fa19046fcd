/** A member's points: the balance, the redemptions, and the history of awards and redemptions. */
import type { Knex } from 'knex';
import { PointRedemption } from '../../../models/PointRedemption.js';
import { pageOf, type Page } from './keyset.js';

/** The member's balance, with the person row locked until the transaction ends (undefined: no such member). */
export async function lockBalance(trx: Knex.Transaction, personId: string): Promise<number | undefined> {
  const row = await trx('people').where('id', personId).forUpdate().first('points');
  return row?.points;
}

export async function findRedemption(trx: Knex.Transaction, personId: string, idempotencyKey: string): Promise<PointRedemption | undefined> {
  return PointRedemption.query(trx).where({ person_id: personId, idempotency_key: idempotencyKey }).first();
}

/** Records a redemption and takes its points off the balance; the caller holds the person row (lockBalance). */
export async function insertRedemption(trx: Knex.Transaction, redemption: PointRedemption): Promise<void> {
  await PointRedemption.query(trx).insert(redemption);
  await trx('people').where('id', redemption.personId).decrement('points', redemption.points);
}

/** One line of a member's points history: an award (+points, at a store for a capture) or a redemption (−points). */
export type LedgerEntry = {
  id: string;
  kind: 'award' | 'redemption';
  points: number;
  at: Date;
  storeId: string | null;
  captureId: string | null;
  reason: string | null;
};

export type LedgerKeyset = { at: string; id: string };

/** Awards and redemptions of a member in one history, latest first (awards at their capture's time), ties by id. */
export async function listLedger(db: Knex, personId: string, page: { after?: LedgerKeyset; limit: number }): Promise<Page<LedgerEntry>> {
  const awards = db('perk_awards')
    .where('person_id', personId)
    .select('id', db.raw("'award' AS kind"), 'points', 'awarded_at AS at', 'store_id', 'capture_id', db.raw('NULL AS reason'));
  const redemptions = db('point_redemptions')
    .where('person_id', personId)
    .select('id', db.raw("'redemption' AS kind"), db.raw('-points AS points'), 'redeemed_at AS at', db.raw('NULL AS store_id'), db.raw('NULL AS capture_id'), 'reason');
  const query = db.from(awards.unionAll(redemptions, true).as('entries')).select('*');
  const after = page.after;
  if (after) {
    const at = new Date(after.at);
    query.where((w) => w.where('at', '<', at).orWhere((same) => same.where('at', at).where('id', '<', after.id)));
  }
  const rows: { id: string; kind: LedgerEntry['kind']; points: number | string; at: Date; store_id: string | null; capture_id: string | null; reason: string | null }[] =
    await query.orderBy('at', 'desc').orderBy('id', 'desc').limit(page.limit + 1);
  const entries = rows.map((r) => ({
    id: r.id,
    kind: r.kind,
    points: Number(r.points),
    at: r.at,
    storeId: r.store_id,
    captureId: r.capture_id,
    reason: r.reason,
  }));
  return pageOf(entries, page.limit, (e) => ({ at: e.at.toISOString(), id: e.id }));
}
