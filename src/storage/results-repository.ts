/**
 * Rows a capture's results consist of: faces, sightings and the subjects' last-seen times. The
 * writes are returned as statements, for the caller (services/results.ts) to order and send together.
 */
import type { Knex } from 'knex';
import { faceIdOf, type CapturedFace, type FaceMatch } from '../queue/contract.js';
import type { SubjectRef } from '../services/analytics/index.js';

export type SightingRecord = SubjectRef & {
  faceId: string;
  faceIndex: number;
  storeId: string;
  seenAt: Date;
  age: number | null;
  gender: CapturedFace['gender'] | null;
};

/**
 * An age as `sightings.age` keeps it (FLOAT(8,2), knex's `float()`): rounded to two decimals here,
 * the stored value reads back exactly as this number, so the caller can use it without reading it.
 */
export const storedAge = (age: number): number => Number(age.toFixed(2));

/** The subjects of the sightings an earlier run of the capture recorded. */
export async function earlierSubjects(trx: Knex.Transaction, captureId: string): Promise<SubjectRef[]> {
  const rows: { merchant_id: string; subject_kind: SubjectRef['subjectKind']; subject_id: string }[] = await trx('sightings')
    .where({ capture_id: captureId })
    .select('merchant_id', 'subject_kind', 'subject_id');
  return rows.map((row) => ({ merchantId: row.merchant_id, subjectKind: row.subject_kind, subjectId: row.subject_id }));
}

/** The statements writing the capture's faces (a matched face with its embedding); `replacing`: deleting an earlier run's faces (and, by cascade, their sightings) first. */
export function writeFaces(
  trx: Knex.Transaction,
  captureId: string,
  faces: (CapturedFace & { embedding?: string })[],
  matches: Map<number, FaceMatch>,
  options: { replacing: boolean; pack?: string },
): Knex.QueryBuilder[] {
  const statements = options.replacing ? [trx('faces').where({ capture_id: captureId }).delete()] : [];
  if (faces.length === 0) return statements;
  return [
    ...statements,
    trx('faces').insert(
      faces.map((face, index) => {
        const match = matches.get(index);
        return {
          id: faceIdOf(captureId, index),
          capture_id: captureId,
          face_index: index,
          box_x: face.box.x,
          box_y: face.box.y,
          box_width: face.box.width,
          box_height: face.box.height,
          landmarks: JSON.stringify(face.landmarks),
          score: face.score,
          age: face.age,
          gender: face.gender,
          gender_confidence: face.genderConfidence,
          quality: JSON.stringify(face.quality),
          match_kind: match?.kind ?? null,
          person_id: match?.kind === 'member' ? match.subjectId : null,
          visitor_id: match?.kind === 'visitor' ? match.subjectId : null,
          similarity: match?.similarity ?? null,
          // A matched face keeps its embedding: what "not this person" makes its new visitor from.
          ...(match && face.embedding && options.pack ? { embedding: Buffer.from(face.embedding, 'base64'), embedding_pack: options.pack } : {}),
        };
      }),
    ),
  ];
}

/** The matches a capture's faces were recorded with. */
export async function recordedMatches(trx: Knex.Transaction, captureId: string): Promise<FaceMatch[]> {
  const rows: { face_index: number; match_kind: FaceMatch['kind']; person_id: string | null; visitor_id: string | null; similarity: number }[] = await trx('faces')
    .where({ capture_id: captureId })
    .whereNotNull('match_kind')
    .orderBy('face_index')
    .select('face_index', 'match_kind', 'person_id', 'visitor_id', 'similarity');
  return rows
    .filter((row) => (row.match_kind === 'member' ? row.person_id : row.visitor_id) !== null)
    .map((row) => ({
      faceIndex: row.face_index,
      kind: row.match_kind,
      subjectId: (row.match_kind === 'member' ? row.person_id : row.visitor_id)!,
      similarity: row.similarity,
      newVisitor: false,
    }));
}

/** The statement inserting the capture's sightings (none without sightings). */
export function insertSightings(trx: Knex.Transaction, captureId: string, sightings: SightingRecord[]): Knex.QueryBuilder[] {
  if (sightings.length === 0) return [];
  return [
    trx('sightings').insert(
      sightings.map((sighting) => ({
        face_id: sighting.faceId,
        capture_id: captureId,
        store_id: sighting.storeId,
        merchant_id: sighting.merchantId,
        subject_kind: sighting.subjectKind,
        subject_id: sighting.subjectId,
        person_id: sighting.subjectKind === 'member' ? sighting.subjectId : null,
        visitor_id: sighting.subjectKind === 'visitor' ? sighting.subjectId : null,
        seen_at: sighting.seenAt,
        age: sighting.age,
        gender: sighting.gender,
      })),
    ),
  ];
}

/** The statements moving each subject's first/last-seen times to include `seenAt`. */
export function touchSubjects(trx: Knex.Transaction, sightings: SightingRecord[], seenAt: Date): Knex.QueryBuilder[] {
  const ids = (kind: SubjectRef['subjectKind']) => sightings.filter((s) => s.subjectKind === kind).map((s) => s.subjectId);
  const people = ids('member');
  const visitors = ids('visitor');
  const statements: Knex.QueryBuilder[] = [];
  if (people.length > 0) {
    statements.push(trx('people').whereIn('id', people).update({ last_seen_at: trx.raw('GREATEST(COALESCE(last_seen_at, ?), ?)', [seenAt, seenAt]) }));
  }
  if (visitors.length > 0) {
    statements.push(
      trx('visitors')
        .whereIn('id', visitors)
        .update({ first_seen_at: trx.raw('LEAST(first_seen_at, ?)', [seenAt]), last_seen_at: trx.raw('GREATEST(last_seen_at, ?)', [seenAt]) }),
    );
  }
  return statements;
}
