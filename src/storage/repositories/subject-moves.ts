/**
 * Rows of identity changes that move sightings between subjects (merge, link, reject; see
 * migrations/20261205100001): the change's record, the faces it moved, and the subjects' rows it
 * touches. Writes only in the caller's transaction, subjects locked first (services/identity.ts).
 */
import type { Knex } from 'knex';
import type { Subject } from '../../services/analytics/index.js';

export type MoveKind = 'merge' | 'link' | 'reject';
/** A subject's seen times as they were before the change (a member has no first seen). */
export type SeenTimes = { firstSeenAt: string | null; lastSeenAt: string | null };

export type SubjectMove = {
  auditId: number;
  merchantId: string;
  kind: MoveKind;
  from: Subject;
  to: Subject;
  faceIds: string[];
  vectorIds: string[];
  awardIds: string[];
  seenBefore: { to: SeenTimes };
  vectorsMovedAt: Date | null;
  undoneBy: number | null;
};

type MoveRow = {
  audit_id: number | string;
  merchant_id: string;
  kind: MoveKind;
  from_kind: Subject['kind'];
  from_id: string;
  to_kind: Subject['kind'];
  to_id: string;
  face_ids: string;
  vector_ids: string;
  award_ids: string;
  seen_before: string;
  vectors_moved_at: Date | null;
  undone_by: number | string | null;
};

const fromRow = (r: MoveRow): SubjectMove => ({
  auditId: Number(r.audit_id),
  merchantId: r.merchant_id,
  kind: r.kind,
  from: { kind: r.from_kind, id: r.from_id },
  to: { kind: r.to_kind, id: r.to_id },
  faceIds: JSON.parse(r.face_ids),
  vectorIds: JSON.parse(r.vector_ids),
  awardIds: JSON.parse(r.award_ids),
  seenBefore: JSON.parse(r.seen_before),
  vectorsMovedAt: r.vectors_moved_at,
  undoneBy: r.undone_by === null ? null : Number(r.undone_by),
});

export async function insertMove(trx: Knex.Transaction, move: Omit<SubjectMove, 'vectorsMovedAt' | 'undoneBy'>): Promise<void> {
  await trx('subject_moves').insert({
    audit_id: move.auditId,
    merchant_id: move.merchantId,
    kind: move.kind,
    from_kind: move.from.kind,
    from_id: move.from.id,
    to_kind: move.to.kind,
    to_id: move.to.id,
    face_ids: JSON.stringify(move.faceIds),
    vector_ids: JSON.stringify(move.vectorIds),
    award_ids: JSON.stringify(move.awardIds),
    seen_before: JSON.stringify(move.seenBefore),
  });
}

/** The change recorded under this audit entry; with a transaction, its row locked. */
export async function findMove(db: Knex, auditId: number, lock = false): Promise<SubjectMove | undefined> {
  const query = db('subject_moves').where('audit_id', auditId).first();
  if (lock) query.forUpdate();
  const row: MoveRow | undefined = await query;
  return row && fromRow(row);
}

/** The merge or link that took this visitor away and is not undone, if any. */
export async function activeMoveFrom(db: Knex, merchantId: string, visitorId: string): Promise<SubjectMove | undefined> {
  const row: MoveRow | undefined = await db('subject_moves')
    .where({ merchant_id: merchantId, from_id: visitorId })
    .whereIn('kind', ['merge', 'link'])
    .whereNull('undone_by')
    .orderBy('audit_id', 'desc')
    .first();
  return row && fromRow(row);
}

/** Whether a change after this one, not undone, moved sightings from or to either of its subjects. */
export async function changedSince(trx: Knex.Transaction, move: SubjectMove): Promise<boolean> {
  const ids = [move.from.id, move.to.id];
  const later = await trx('subject_moves')
    .where('merchant_id', move.merchantId)
    .where('audit_id', '>', move.auditId)
    .whereNull('undone_by')
    .where((w) => w.whereIn('from_id', ids).orWhereIn('to_id', ids))
    .first('audit_id');
  return later !== undefined;
}

export async function markUndone(trx: Knex.Transaction, auditId: number, undoneBy: number): Promise<void> {
  await trx('subject_moves').where('audit_id', auditId).update({ undone_by: undoneBy, vectors_moved_at: null });
}

/** The gallery side of the change (or of its undo, once undone) is done; not if it was undone meanwhile. */
export async function markVectorsMoved(db: Knex, move: Pick<SubjectMove, 'auditId' | 'undoneBy'>): Promise<void> {
  const query = db('subject_moves').where('audit_id', move.auditId);
  if (move.undoneBy === null) query.whereNull('undone_by');
  else query.where('undone_by', move.undoneBy);
  await query.update({ vectors_moved_at: db.fn.now(3) });
}

/** Merges and links whose gallery side (or their undo's) is not done yet, oldest first. */
export async function pendingVectorMoves(db: Knex, limit: number): Promise<SubjectMove[]> {
  const rows: MoveRow[] = await db('subject_moves').whereIn('kind', ['merge', 'link']).whereNull('vectors_moved_at').orderBy('audit_id').limit(limit);
  return rows.map(fromRow);
}

/** The ids of a subject's sightings (its faces matched to it) at the merchant. */
export async function subjectFaceIds(trx: Knex.Transaction, merchantId: string, subjectId: string): Promise<string[]> {
  const rows: { face_id: string }[] = await trx('sightings').where({ merchant_id: merchantId, subject_id: subjectId }).orderBy('face_id').select('face_id');
  return rows.map((r) => r.face_id);
}

/** How many of these faces are still sightings of the subject. */
export async function countFacesOf(trx: Knex.Transaction, faceIds: string[], subjectId: string): Promise<number> {
  if (faceIds.length === 0) return 0;
  const [{ n }] = await trx('sightings').whereIn('face_id', faceIds).where('subject_id', subjectId).count({ n: '*' });
  return Number(n);
}

/** The faces' match now names `to` (their sightings are moved by reassignSightings). */
export async function relabelFaces(trx: Knex.Transaction, faceIds: string[], to: Subject): Promise<void> {
  if (faceIds.length === 0) return;
  await trx('faces').whereIn('id', faceIds).update({
    match_kind: to.kind,
    person_id: to.kind === 'member' ? to.id : null,
    visitor_id: to.kind === 'visitor' ? to.id : null,
  });
}

/** The subject's row as it is (a visitor merged or linked away counts as gone), locked by lockSubjects already. */
export async function subjectSeen(trx: Knex.Transaction, subject: Subject): Promise<(SeenTimes & { mergedInto: Subject | null }) | undefined> {
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  if (subject.kind === 'member') {
    const row = await trx('people').where('id', subject.id).first('last_seen_at');
    return row && { firstSeenAt: null, lastSeenAt: iso(row.last_seen_at), mergedInto: null };
  }
  const row = await trx('visitors').where('id', subject.id).first('first_seen_at', 'last_seen_at', 'merged_into_kind', 'merged_into_id');
  return row && {
    firstSeenAt: iso(row.first_seen_at),
    lastSeenAt: iso(row.last_seen_at),
    mergedInto: row.merged_into_id ? { kind: row.merged_into_kind, id: row.merged_into_id } : null,
  };
}

/**
 * Sets the subject's seen times to cover `seen` (the times it had before a change, or those of the
 * subject merged into it) and its own sightings, so an undo gives back what the change added.
 */
export async function resetSeen(trx: Knex.Transaction, merchantId: string, subject: Subject, seen: SeenTimes): Promise<void> {
  const [range] = await trx('sightings').where({ merchant_id: merchantId, subject_id: subject.id })
    .select(trx.raw('MIN(seen_at) AS first'), trx.raw('MAX(seen_at) AS last'));
  const times = [seen.lastSeenAt ? new Date(seen.lastSeenAt) : null, range?.last ?? null].filter((t): t is Date => t !== null);
  const last = times.length > 0 ? new Date(Math.max(...times.map((t) => t.getTime()))) : null;
  if (subject.kind === 'member') {
    await trx('people').where('id', subject.id).update({ last_seen_at: last });
    return;
  }
  const firsts = [seen.firstSeenAt ? new Date(seen.firstSeenAt) : null, range?.first ?? null].filter((t): t is Date => t !== null);
  const first = new Date(Math.min(...firsts.map((t) => t.getTime())));
  await trx('visitors').where('id', subject.id).update({ first_seen_at: first, last_seen_at: last });
}

/** A visitor merged or linked away (`into`), or back (null). */
export async function setMergedInto(trx: Knex.Transaction, visitorId: string, into: Subject | null): Promise<void> {
  await trx('visitors').where('id', visitorId).update({ merged_into_kind: into?.kind ?? null, merged_into_id: into?.id ?? null });
}
