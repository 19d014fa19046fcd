/** A member's points: the balance, the redemptions, and the history of awards and redemptions. */
import { randomUUID } from 'node:crypto';
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

/**
 * Takes back the perk awarded to the member for this face (its match was rejected): a reversal line
 * of at most the balance (which never goes below zero). Answers the points taken back (0: none awarded).
 */
export async function reversePerk(trx: Knex.Transaction, personId: string, face: { captureId: string; faceIndex: number }): Promise<number> {
  const balance = await lockBalance(trx, personId);
  const award = await trx('perk_awards as a')
    .where({ 'a.person_id': personId, 'a.capture_id': face.captureId, 'a.face_index': face.faceIndex })
    .whereNotExists(trx('perk_reversals as r').whereRaw('r.award_id = a.id').select(trx.raw('1')))
    .first('a.id', 'a.points');
  if (!award || balance === undefined) return 0;
  const points = Math.min(award.points, balance);
  await trx('perk_reversals').insert({ id: randomUUID(), award_id: award.id, person_id: personId, points, reversed_at: new Date() });
  await trx('people').where('id', personId).decrement('points', points);
  return points;
}

/** One line of a member's points history: an award (+points, at a store for a capture), a redemption (−points) or an award's reversal (−points). */
export type LedgerEntry = {
  id: string;
  kind: 'award' | 'redemption' | 'reversal';
  points: number;
  at: Date;
  storeId: string | null;
  captureId: string | null;
  reason: string | null;
};

export type LedgerKeyset = { at: string; id: string };

/** Awards, redemptions and reversals of a member in one history, latest first (awards at their capture's time), ties by id. */
export async function listLedger(db: Knex, personId: string, page: { after?: LedgerKeyset; limit: number }): Promise<Page<LedgerEntry>> {
  const awards = db('perk_awards')
    .where('person_id', personId)
    .select('id', db.raw("'award' AS kind"), 'points', 'awarded_at AS at', 'store_id', 'capture_id', db.raw('NULL AS reason'));
  const redemptions = db('point_redemptions')
    .where('person_id', personId)
    .select('id', db.raw("'redemption' AS kind"), db.raw('-points AS points'), 'redeemed_at AS at', db.raw('NULL AS store_id'), db.raw('NULL AS capture_id'), 'reason');
  const reversals = db('perk_reversals as r')
    .join('perk_awards as a', 'a.id', 'r.award_id')
    .where('r.person_id', personId)
    .select('r.id', db.raw("'reversal' AS kind"), db.raw('-r.points AS points'), 'r.reversed_at AS at', 'a.store_id', 'a.capture_id', db.raw("'not this person' AS reason"));
  const query = db.from(awards.unionAll([redemptions, reversals], true).as('entries')).select('*');
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
