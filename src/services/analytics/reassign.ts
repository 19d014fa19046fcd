/**
 * Moves sightings from one subject to another (a merge, a link of a visitor to a member, a face
 * rejected from its match, and the undo of each). Analytics are a function of sightings, so the
 * move is the two steps the incremental path already does exactly: the sightings are retracted
 * from their subject's visits (shrink, split, vanish; first visit later), relabelled, and recorded
 * into the other subject's (extend, bridge two visits closer than the gap, new visit; first visit
 * earlier), each with its rollup deltas (member vs visitor visits, new vs returning) and spans.
 * Moving the same sightings back restores every analytics row as it was.
 *
 * Call it inside the caller's transaction after lockSubjects of both subjects.
 */
import type { Knex } from 'knex';
import type { SubjectKind } from './rollup.js';
import { recordSightings, retractSightings, type SubjectRef } from './record.js';

export type Subject = { kind: SubjectKind; id: string };

export async function reassignSightings(
  trx: Knex.Transaction,
  move: { merchantId: string; faceIds: string[]; to: Subject },
  options: { visitGapMinutes: number },
): Promise<void> {
  if (move.faceIds.length === 0) return;
  await retractSightings(trx, move.faceIds, options);
  const { to } = move;
  await trx('sightings')
    .where('merchant_id', move.merchantId)
    .whereIn('face_id', move.faceIds)
    .update({
      subject_kind: to.kind,
      subject_id: to.id,
      person_id: to.kind === 'member' ? to.id : null,
      visitor_id: to.kind === 'visitor' ? to.id : null,
    });
  const rows: { face_id: string; store_id: string; seen_at: Date }[] = await trx('sightings')
    .where('merchant_id', move.merchantId)
    .whereIn('face_id', move.faceIds)
    .select('face_id', 'store_id', 'seen_at');
  const subject: SubjectRef = { merchantId: move.merchantId, subjectKind: to.kind, subjectId: to.id };
  await recordSightings(
    trx,
    rows.map((r) => ({ ...subject, storeId: r.store_id, seenAt: r.seen_at, faceId: r.face_id })),
    options,
  );
}
