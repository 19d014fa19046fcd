/**
 * "Not this person": a merchant says a face is not the subject it was matched to. The face becomes
 * a visitor — the closest other visitor at the visitor threshold, else a new one made from its
 * embedding — its sighting moves there (reassignSightings: both subjects' analytics exact), a perk
 * awarded for it is reversed in the ledger, and the pairing is remembered (rejected_matches) so
 * the match stage refuses the subject to a later face closer to this one than to the subject's own.
 *
 * Ordering with the gallery: a new visitor's vector is written first, under an id derived from the
 * face and the rejected subject (the same on a retry, so idempotent), then the transaction. If the
 * transaction fails the vector is deleted again; if that fails too it names a visitor that does not
 * exist, which the aggregate stage treats as no match (lockSubjects), until the request is retried.
 */
import type { Knex } from 'knex';
import type { Gallery } from '../gallery/gallery.js';
import { deterministicId } from '../queue/contract.js';
import { recordAudit, type Actor } from '../storage/repositories/audit.js';
import { reversePerk } from '../storage/repositories/points.js';
import { insertRejection, rejectedEmbeddings, type MatchedFace } from '../storage/repositories/rejections.js';
import { insertMove, relabelFaces, resetSeen, subjectSeen } from '../storage/repositories/subject-moves.js';
import { lockSubjects, reassignSightings, type Subject } from './analytics/index.js';
import { IdentityChangeRefused, onGallery, transaction } from './identity.js';
import { dropRejectedHits } from './matching.js';

export type RejectionDeps = {
  db: Knex;
  gallery: Pick<Gallery, 'search' | 'upsert' | 'deleteSubject'>;
  visitGapMinutes: number;
  visitorThreshold: number;
};

const CANDIDATES = 5;

export async function rejectFace(deps: RejectionDeps, actor: Actor, face: MatchedFace): Promise<{ subject: Subject; auditId: number }> {
  const rejected = face.subject;
  if (!rejected) throw new IdentityChangeRefused('not_matched', 'this face was not matched to anyone');
  const { embedding, pack } = face;
  if (!embedding || !pack) throw new IdentityChangeRefused('no_embedding', 'this face was matched before faces kept their embedding; reprocess its capture first');
  const { db, gallery } = deps;
  const target = await closestOtherVisitor(deps, face, embedding, pack, rejected);
  const created = target === undefined ? { kind: 'visitor' as const, id: deterministicId(`rejected:${face.id}:${rejected.id}`) } : undefined;
  if (created) await onGallery(false, () => gallery.upsert('visitor', face.merchantId, created.id, created.id, embedding));
  const to = target ?? created!;
  try {
    const auditId = await transaction(db, async (trx) => {
      await lockSubjects(trx, [rejected, to].map((s) => ({ merchantId: face.merchantId, subjectKind: s.kind, subjectId: s.id })));
      const sighting = await trx('sightings').where('face_id', face.id).forUpdate().first('subject_id', 'seen_at');
      if (!sighting || sighting.subject_id !== rejected.id) throw new IdentityChangeRefused('face_moved', 'this face was moved or reprocessed meanwhile; read it again');
      if (created) await trx('visitors').insert({ id: created.id, merchant_id: face.merchantId, first_seen_at: sighting.seen_at, last_seen_at: sighting.seen_at });
      const seen = await subjectSeen(trx, to);
      if (!seen || seen.mergedInto) throw new IdentityChangeRefused('face_moved', 'the visitor this face is closest to changed meanwhile; send the request again');
      await reassignSightings(trx, { merchantId: face.merchantId, faceIds: [face.id], to }, { visitGapMinutes: deps.visitGapMinutes });
      await relabelFaces(trx, [face.id], to);
      await resetSeen(trx, face.merchantId, to, seen);
      const pointsReversed = rejected.kind === 'member' ? await reversePerk(trx, rejected.id, face) : 0;
      await insertRejection(trx, { ...face, subject: rejected, embedding, pack });
      const id = await recordAudit(trx, {
        merchantId: face.merchantId, actor, action: 'face.rejected', subject: rejected,
        details: { faceId: face.id, movedTo: to, newVisitor: created !== undefined, pointsReversed },
      });
      await insertMove(trx, {
        auditId: id, merchantId: face.merchantId, kind: 'reject', from: rejected, to, faceIds: [face.id], vectorIds: [], awardIds: [],
        seenBefore: { to: { firstSeenAt: seen.firstSeenAt, lastSeenAt: seen.lastSeenAt } },
      });
      return id;
    });
    return { subject: to, auditId };
  } catch (error) {
    // Not if the visitor exists: a concurrent identical request (a double submit) created it.
    if (created && !(await db('visitors').where('id', created.id).first('id').catch(() => true))) {
      await gallery.deleteSubject('visitor', face.merchantId, created.id).catch(() => undefined);
    }
    throw error;
  }
}

/** The visitor (other than the rejected subject) this face matches, as the match stage would pick it. */
async function closestOtherVisitor(deps: RejectionDeps, face: MatchedFace, embedding: Float32Array, pack: string, rejected: Subject): Promise<Subject | undefined> {
  const [hits] = await onGallery(false, () => deps.gallery.search('visitor', face.merchantId, [embedding], CANDIDATES));
  const others = [{ faceIndex: 0, hits: hits.filter((hit) => hit.subjectId !== rejected.id) }];
  const [{ hits: allowed }] = await dropRejectedHits(others, [embedding], deps.visitorThreshold, (ids) => rejectedEmbeddings(deps.db, face.merchantId, pack, ids));
  const kept = allowed.filter((hit) => hit.similarity >= deps.visitorThreshold);
  if (kept.length === 0) return undefined;
  const open = await deps.db('visitors').whereIn('id', kept.map((hit) => hit.subjectId)).whereNull('merged_into_id').pluck('id');
  const best = kept.find((hit) => open.includes(hit.subjectId));
  return best && { kind: 'visitor', id: best.subjectId };
}
