/**
 * Identity changes that move a subject's sightings to another: merging two visitors, linking a
 * visitor to a member, and undoing either. Each is one SQL transaction under both subjects' locks
 * (lockSubjects, the aggregate stage's order): sightings and analytics (reassignSightings), faces,
 * seen times, perks for the past, the audit entry and the change's record (subject_moves).
 *
 * Gallery vectors cannot join the transaction. They move after the commit, by ids recorded in it,
 * and the record says when they have (vectors_moved_at): moveVectors is idempotent, so a gallery
 * outage leaves a change whose SQL side is whole and whose vectors the same request, sent again,
 * finishes (the answer is the first one's), as does housekeeping within a sweep period. Meanwhile the match stage may still find the old
 * vectors: a visitor merged away no longer counts as existing there (lockSubjects), so such a face
 * stays unmatched rather than being counted for a subject that is gone.
 */
import type { Knex } from 'knex';
import type { Gallery } from '../gallery/gallery.js';
import { findAuditEntry, recordAudit, type Actor } from '../storage/repositories/audit.js';
import {
  activeMoveFrom, changedSince, countFacesOf, findMove, insertMove, markUndone, markVectorsMoved, pendingVectorMoves, relabelFaces, resetSeen,
  setMergedInto, subjectFaceIds, subjectSeen, type SubjectMove,
} from '../storage/repositories/subject-moves.js';
import { withNamedLock } from '../storage/named-lock.js';
import { retryOnLockConflict } from '../storage/transactions.js';
import { lockSubjects, reassignSightings, type Subject } from './analytics/index.js';
import { awardPerk, type PerkOptions } from './perks.js';

export type IdentityDeps = {
  db: Knex;
  gallery: Pick<Gallery, 'subjectVectorIds' | 'moveVectors'>;
  visitGapMinutes: number;
  perks: PerkOptions;
};
type VectorDeps = { db: Knex; gallery: Pick<Gallery, 'moveVectors'> };

/** Why a change was refused: a subject missing (404), or the change not possible (409/422). */
export class IdentityChangeRefused extends Error {
  constructor(
    readonly reason:
      | 'visitor_gone' | 'person_gone' | 'entry_gone' | 'same_visitor' | 'undo_stale' | 'already_undone' | 'not_undoable' | 'points_spent'
      | 'not_matched' | 'no_embedding' | 'face_moved',
    message: string,
  ) {
    super(message);
    this.name = 'IdentityChangeRefused';
  }
}

/** The gallery failed; `done` says whether the SQL side committed (a retry of the same request finishes it). */
export class GalleryUnavailable extends Error {
  constructor(
    readonly done: boolean,
    readonly cause: unknown,
  ) {
    super('the face gallery is unavailable');
    this.name = 'GalleryUnavailable';
  }
}

/** Runs a gallery call; its failure is GalleryUnavailable (503), `done` saying whether the database change already committed. */
export const onGallery = async <T>(done: boolean, call: () => Promise<T>): Promise<T> => {
  try {
    return await call();
  } catch (error) {
    throw new GalleryUnavailable(done, error);
  }
};

export type MoveOutcome = { auditId: number; sightingsMoved: number; pointsAwarded: number };

/** An identity change's transaction, re-run on a lock conflict. */
export const transaction = <T>(db: Knex, work: (trx: Knex.Transaction) => Promise<T>) =>
  retryOnLockConflict(() => db.transaction(work), 6, (attempt) => Math.random() * 20 * attempt);

const visitor = (id: string): Subject => ({ kind: 'visitor', id });
const refs = (merchantId: string, subjects: Subject[]) => subjects.map((s) => ({ merchantId, subjectKind: s.kind, subjectId: s.id }));

/** `visitorId` becomes part of `into` (a visitor or a member): its sightings, visits and vectors. */
export async function moveVisitor(
  deps: IdentityDeps,
  actor: Actor,
  change: { merchantId: string; visitorId: string; into: Subject; awardPast?: boolean },
): Promise<MoveOutcome> {
  const { merchantId, visitorId, into } = change;
  if (into.id === visitorId) throw new IdentityChangeRefused('same_visitor', 'a visitor cannot be merged into itself');
  const earlier = await activeMoveFrom(deps.db, merchantId, visitorId);
  if (earlier && earlier.to.id === into.id) return finishVectors(deps, earlier, { sightingsMoved: earlier.faceIds.length, pointsAwarded: earlier.awardIds.length * deps.perks.points });
  const from = visitor(visitorId);
  // Read before the transaction: a visitor's vectors are only ever added when it is created.
  const vectorIds = await onGallery(false, () => deps.gallery.subjectVectorIds('visitor', merchantId, visitorId));
  const outcome = await transaction(deps.db, async (trx) => {
    await lockSubjects(trx, refs(merchantId, [from, into]));
    const source = await subjectSeen(trx, from);
    if (!source || source.mergedInto) throw new IdentityChangeRefused('visitor_gone', 'visitor not found');
    const target = await subjectSeen(trx, into);
    if (!target || target.mergedInto) throw new IdentityChangeRefused(into.kind === 'member' ? 'person_gone' : 'visitor_gone', `${into.kind} not found`);
    const faceIds = await subjectFaceIds(trx, merchantId, visitorId);
    await reassignSightings(trx, { merchantId, faceIds, to: into }, { visitGapMinutes: deps.visitGapMinutes });
    await relabelFaces(trx, faceIds, into);
    await resetSeen(trx, merchantId, into, {
      firstSeenAt: into.kind === 'member' ? null : [source.firstSeenAt!, target.firstSeenAt!].sort()[0],
      lastSeenAt: [source.lastSeenAt, target.lastSeenAt].filter((t) => t !== null).sort().at(-1) ?? null,
    });
    await setMergedInto(trx, visitorId, into);
    const awardIds = into.kind === 'member' && change.awardPast ? await awardPast(trx, deps.perks, into.id, faceIds) : [];
    const pointsAwarded = awardIds.length * deps.perks.points;
    const auditId = await recordAudit(trx, {
      merchantId,
      actor,
      action: into.kind === 'member' ? 'visitor.linked' : 'visitor.merged',
      subject: into,
      details: { visitorId, sightingsMoved: faceIds.length, ...(into.kind === 'member' ? { pointsAwarded } : {}) },
    });
    const move = {
      auditId, merchantId, kind: into.kind === 'member' ? 'link' as const : 'merge' as const, from, to: into, faceIds, vectorIds, awardIds,
      seenBefore: { to: { firstSeenAt: target.firstSeenAt, lastSeenAt: target.lastSeenAt } },
    };
    await insertMove(trx, move);
    return { move, sightingsMoved: faceIds.length, pointsAwarded };
  });
  return finishVectors(deps, { ...outcome.move, vectorsMovedAt: null, undoneBy: null }, outcome);
}

/** Perks for the moved sightings in time order, each under the cooldown as if recognised then; the awards' ids. */
async function awardPast(trx: Knex.Transaction, perks: PerkOptions, personId: string, faceIds: string[]): Promise<string[]> {
  if (faceIds.length === 0) return [];
  const sightings: { capture_id: string; store_id: string; seen_at: Date; face_index: number }[] = await trx('sightings as s')
    .join('faces as f', 'f.id', 's.face_id')
    .whereIn('s.face_id', faceIds)
    .orderBy('s.seen_at')
    .select('s.capture_id', 's.store_id', 's.seen_at', 'f.face_index');
  const awarded: string[] = [];
  for (const s of sightings) {
    const points = await awardPerk(trx, { personId, storeId: s.store_id, captureId: s.capture_id, faceIndex: s.face_index, seenAt: s.seen_at }, perks);
    if (points === 0) continue;
    const row = await trx('perk_awards').where({ capture_id: s.capture_id, face_index: s.face_index }).first('id');
    awarded.push(row.id);
  }
  return awarded;
}

/**
 * Moves the change's vectors (or, once undone, moves them back) unless done, then records that they
 * are. The request, its resend, an undo and housekeeping may try at once: each holds the change's
 * named lock and acts on the record as it reads it then, so vectors end where the record says.
 */
async function finishVectors<T>(deps: VectorDeps, move: SubjectMove, outcome: T): Promise<T & { auditId: number }> {
  if (move.vectorsMovedAt === null) {
    const locked = await withNamedLock(deps.db, `faceperks:subject-move:${move.auditId}`, 30, async () => {
      const current = await findMove(deps.db, move.auditId);
      if (!current || current.vectorsMovedAt !== null) return;
      const [from, to] = current.undoneBy === null ? [current.from, current.to] : [current.to, current.from];
      await onGallery(true, () => deps.gallery.moveVectors(current.merchantId, { kind: from.kind, subjectId: from.id }, { kind: to.kind, subjectId: to.id }, current.vectorIds));
      await markVectorsMoved(deps.db, current);
    });
    if (!locked.acquired) throw new GalleryUnavailable(true, new Error('the change\'s vectors are being moved by another request'));
  }
  return { ...outcome, auditId: move.undoneBy ?? move.auditId };
}

/**
 * Finishes the gallery side of changes a gallery outage left pending (housekeeping, so a change
 * nobody resends is not left half done). Stops at the first failure: the gallery is still down.
 */
export async function finishPendingVectorMoves(deps: VectorDeps, limit = 100): Promise<{ vectorMovesFinished: number }> {
  let finished = 0;
  for (const move of await pendingVectorMoves(deps.db, limit)) {
    await finishVectors(deps, move, {});
    finished++;
  }
  return { vectorMovesFinished: finished };
}

/**
 * Undoes a merge or a link: the same sightings, faces and vectors go back to the visitor, which
 * answers again; perks awarded for its past are taken back; analytics come out as they were.
 * Refused (undo_stale) once either subject changed again: a later merge, link or rejection not
 * undone, a moved face gone or moved on, a subject erased or purged, the awarded points spent.
 */
export async function undoChange(deps: IdentityDeps, actor: Actor, entry: { auditId: number; merchantId: string | null }): Promise<{ undone: number; auditId: number }> {
  const audit = await findAuditEntry(deps.db, entry.auditId, entry.merchantId);
  if (!audit) throw new IdentityChangeRefused('entry_gone', 'audit entry not found');
  const recorded = await findMove(deps.db, entry.auditId);
  if (!recorded || recorded.kind === 'reject') throw new IdentityChangeRefused('not_undoable', `a ${audit.action} entry cannot be undone`);
  if (recorded.undoneBy !== null) {
    if (recorded.vectorsMovedAt !== null) throw new IdentityChangeRefused('already_undone', 'this change was undone already');
    return { undone: recorded.auditId, ...(await finishVectors(deps, recorded, {})) };
  }
  const { merchantId, from, to } = recorded;
  const move = await transaction(deps.db, async (trx) => {
    await lockSubjects(trx, refs(merchantId, [from, to]));
    const current = await findMove(trx, recorded.auditId, true);
    if (!current || current.undoneBy !== null) throw new IdentityChangeRefused('already_undone', 'this change was undone already');
    const source = await subjectSeen(trx, from);
    const target = await subjectSeen(trx, to);
    const stale = !source || source.mergedInto?.id !== to.id || !target || target.mergedInto !== null
      || (await changedSince(trx, current)) || (await countFacesOf(trx, current.faceIds, to.id)) !== current.faceIds.length;
    if (stale) throw new IdentityChangeRefused('undo_stale', 'the subjects changed after this change; it can no longer be undone');
    if (current.awardIds.length > 0) await takeBackAwards(trx, to.id, current.awardIds);
    await reassignSightings(trx, { merchantId, faceIds: current.faceIds, to: from }, { visitGapMinutes: deps.visitGapMinutes });
    await relabelFaces(trx, current.faceIds, from);
    await setMergedInto(trx, from.id, null);
    await resetSeen(trx, merchantId, to, current.seenBefore.to);
    const auditId = await recordAudit(trx, { merchantId, actor, action: 'change.undone', subject: from, details: { undone: current.auditId, action: audit.action } });
    await markUndone(trx, current.auditId, auditId);
    return { ...current, undoneBy: auditId, vectorsMovedAt: null };
  });
  return { undone: move.auditId, ...(await finishVectors(deps, move, {})) };
}

/** Deletes the awards a link made for the past, and their points; refused if the member spent them. */
async function takeBackAwards(trx: Knex.Transaction, personId: string, awardIds: string[]): Promise<void> {
  const person = await trx('people').where('id', personId).forUpdate().first('points');
  const [{ total }] = await trx('perk_awards').whereIn('id', awardIds).sum({ total: 'points' });
  const points = Number(total ?? 0);
  if (person.points < points) throw new IdentityChangeRefused('points_spent', 'the points awarded for the past were spent; the link can no longer be undone');
  await trx('perk_awards').whereIn('id', awardIds).delete();
  await trx('people').where('id', personId).decrement('points', points);
}
