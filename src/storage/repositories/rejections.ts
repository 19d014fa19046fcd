/**
 * Face embeddings kept for "not this person" and the rejected pairings (migrations/20261205100002).
 * Both are biometric: they go with their subject (forgetSubjectEmbeddings on erasure and purge).
 */
import type { Knex } from 'knex';
import type { Subject } from '../../services/analytics/index.js';

/** A matched face as a rejection needs it: where it was seen, its match and its embedding. */
export type MatchedFace = {
  id: string;
  captureId: string;
  faceIndex: number;
  merchantId: string;
  subject: Subject | null;
  embedding: Float32Array | null;
  pack: string | null;
};

const floats = (bytes: Buffer) => new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));

/** The face (of the merchant, if one is named) with its match (null: unmatched); undefined when unknown. */
export async function findMatchedFace(db: Knex, faceId: string, merchantId: string | null): Promise<MatchedFace | undefined> {
  const query = db('faces as f').join('captures as c', 'c.id', 'f.capture_id').where('f.id', faceId)
    .first('f.id', 'f.capture_id', 'f.face_index', 'c.merchant_id', 'f.match_kind', 'f.person_id', 'f.visitor_id', 'f.embedding', 'f.embedding_pack');
  if (merchantId !== null) query.where('c.merchant_id', merchantId);
  const row = await query;
  if (!row) return undefined;
  const subjectId = row.match_kind === 'member' ? row.person_id : row.match_kind === 'visitor' ? row.visitor_id : null;
  return {
    id: row.id,
    captureId: row.capture_id,
    faceIndex: Number(row.face_index),
    merchantId: row.merchant_id,
    subject: subjectId ? { kind: row.match_kind, id: subjectId } : null,
    embedding: row.embedding ? floats(row.embedding) : null,
    pack: row.embedding_pack,
  };
}

export async function insertRejection(trx: Knex.Transaction, face: MatchedFace & { subject: Subject; embedding: Float32Array; pack: string }): Promise<void> {
  await trx('rejected_matches').insert({
    merchant_id: face.merchantId,
    subject_kind: face.subject.kind,
    subject_id: face.subject.id,
    face_id: face.id,
    pack: face.pack,
    embedding: Buffer.from(face.embedding.buffer, face.embedding.byteOffset, face.embedding.byteLength),
  });
}

/** The embeddings (of `pack`) rejected for each of these subjects. */
export async function rejectedEmbeddings(db: Knex, merchantId: string, pack: string, subjectIds: string[]): Promise<Map<string, Float32Array[]>> {
  const out = new Map<string, Float32Array[]>();
  if (subjectIds.length === 0) return out;
  const rows: { subject_id: string; embedding: Buffer }[] = await db('rejected_matches')
    .where({ merchant_id: merchantId, pack })
    .whereIn('subject_id', subjectIds)
    .select('subject_id', 'embedding');
  for (const row of rows) out.set(row.subject_id, [...(out.get(row.subject_id) ?? []), floats(row.embedding)]);
  return out;
}

/** Clears the kept embeddings of the subject's faces and its rejected pairings (erasure, purge). */
export async function forgetSubjectEmbeddings(db: Knex, subject: Subject): Promise<void> {
  await db('faces').where(subject.kind === 'member' ? 'person_id' : 'visitor_id', subject.id).whereNotNull('embedding').update({ embedding: null, embedding_pack: null });
  await db('rejected_matches').where('subject_id', subject.id).delete();
}
