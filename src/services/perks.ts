/**
 * Member perks: points for being recognised at a store, at most once per member per store per
 * cooldown of capturedAt time. Runs inside the aggregate transaction.
 *
 * Cooldown: an award is refused if another award for the same member at the same store lies
 * less than `cooldownMinutes` away on either side (late uploads arrive out of order, so we check
 * both directions); exactly `cooldownMinutes` apart is allowed. Race-free: the person row is
 * locked FOR UPDATE first, and the cooldown check is a locking (current) read, so concurrent
 * workers recognising the same member are serialised and each sees the others' committed awards.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';

export type PerkInput = { personId: string; storeId: string; captureId: string; faceIndex: number; seenAt: Date };
export type PerkOptions = { points: number; cooldownMinutes: number };

/** Returns the points awarded now (0 when cooled down, already awarded for this face, or unknown person). */
export async function awardPerk(trx: Knex.Transaction, input: PerkInput, options: PerkOptions): Promise<number> {
  if (options.points <= 0) return 0;
  const person = await trx('people').where({ id: input.personId }).forUpdate().first('id');
  if (!person) return 0;
  const already = await trx('perk_awards')
    .where({ capture_id: input.captureId, face_index: input.faceIndex })
    .forUpdate()
    .first('id');
  if (already) return 0;
  const cooldownMs = options.cooldownMinutes * 60_000;
  const t = input.seenAt.getTime();
  const near = await trx('perk_awards')
    .where({ person_id: input.personId, store_id: input.storeId })
    .where('awarded_at', '>', new Date(t - cooldownMs))
    .where('awarded_at', '<', new Date(t + cooldownMs))
    // An award taken back (its face was not the member) was no visit of the member's.
    .whereNotExists(trx('perk_reversals').whereRaw('perk_reversals.award_id = perk_awards.id').select(trx.raw('1')))
    .forUpdate()
    .first('id');
  if (near) return 0;
  await trx('perk_awards').insert({
    id: randomUUID(),
    person_id: input.personId,
    store_id: input.storeId,
    capture_id: input.captureId,
    face_index: input.faceIndex,
    points: options.points,
    awarded_at: input.seenAt,
  });
  await trx('people').where({ id: input.personId }).increment('points', options.points);
  return options.points;
}
