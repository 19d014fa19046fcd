/** Which faces a crop may belong to: captured faces (by their subject) and enrolled faces. */
import type { Knex } from 'knex';
import { merchantScope, type Principal } from './principal.js';

export async function keepsFaceCrops(db: Knex, merchantId: string): Promise<boolean> {
  const row = await db('merchants').where('id', merchantId).first('keep_face_crops');
  return Boolean(row?.keep_face_crops);
}

export async function setKeepFaceCrops(db: Knex, merchantId: string, keep: boolean): Promise<void> {
  await db('merchants').where('id', merchantId).update({ keep_face_crops: keep });
}

/** How many visits each of these visitors made at the merchant's stores. */
export async function visitorVisits(db: Knex, merchantId: string, visitorIds: string[]): Promise<Map<string, number>> {
  if (visitorIds.length === 0) return new Map();
  const rows: { subject_id: string; visits: number | string }[] = await db('analytics_store_subjects')
    .where('merchant_id', merchantId)
    .whereIn('subject_id', visitorIds)
    .groupBy('subject_id')
    .select('subject_id', db.raw('SUM(visits) AS visits'));
  return new Map(rows.map((row) => [row.subject_id, Number(row.visits)]));
}

/** The ids of the faces seen in captures that were given to these visitors. */
export async function visitorFaceIds(db: Knex, visitorIds: string[]): Promise<string[]> {
  if (visitorIds.length === 0) return [];
  return (await db('faces').whereIn('visitor_id', visitorIds).select('id')).map((row: { id: string }) => row.id);
}

/** A member's enrolled faces and the captured faces recognised as the member. */
export async function memberFaceIds(db: Knex, personId: string): Promise<string[]> {
  const enrolled: { id: string }[] = await db('person_faces').where('person_id', personId).select('id');
  const seen: { id: string }[] = await db('faces').where('person_id', personId).select('id');
  return [...enrolled, ...seen].map((row) => row.id);
}

/**
 * The merchant of a face (captured or enrolled) that the principal may see, and whether that
 * merchant keeps crops; undefined when there is no such face or it is another tenant's.
 */
export async function faceOwner(db: Knex, faceId: string, principal: Principal): Promise<{ merchantId: string; keepsCrops: boolean } | undefined> {
  const captured = db('faces as f').join('captures as c', 'c.id', 'f.capture_id').where('f.id', faceId).select('c.merchant_id');
  const enrolled = db('person_faces as pf').join('people as p', 'p.id', 'pf.person_id').where('pf.id', faceId).select('p.merchant_id');
  const row = await db('merchants as m')
    .whereIn('m.id', captured.union(enrolled))
    .first('m.id', 'm.keep_face_crops');
  const scope = merchantScope(principal);
  if (!row || (scope !== null && scope !== row.id)) return undefined;
  return { merchantId: row.id, keepsCrops: Boolean(row.keep_face_crops) };
}
