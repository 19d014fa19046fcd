/** Members (people) of a merchant and their enrolled faces. */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { Person } from '../../../models/Person.js';
import { PersonFace } from '../../../models/PersonFace.js';
import { isDuplicateKeyError, merchantScope, type Principal } from './principal.js';

export class DuplicateExternalIdError extends Error {
  constructor(readonly externalId: string) {
    super(`a member with externalId ${JSON.stringify(externalId)} already exists for this merchant`);
  }
}

export async function createPerson(
  db: Knex,
  input: { merchantId: string; externalId: string | null; displayName: string },
): Promise<Person> {
  const id = randomUUID();
  try {
    await Person.query(db).insert({ id, ...input });
  } catch (error) {
    if (isDuplicateKeyError(error) && input.externalId !== null) throw new DuplicateExternalIdError(input.externalId);
    throw error;
  }
  return Person.query(db).findById(id).throwIfNotFound();
}

/** Members are merchant data: devices cannot read them. */
export async function findPerson(db: Knex, id: string, principal: Principal): Promise<Person | undefined> {
  if (principal.role === 'device') return undefined;
  const query = Person.query(db).findById(id);
  const scope = merchantScope(principal);
  if (scope !== null) query.where('merchant_id', scope);
  return query;
}

export async function listPersonFaces(db: Knex, personId: string): Promise<PersonFace[]> {
  return PersonFace.query(db).where('person_id', personId).orderBy('created_at').orderBy('id');
}

/**
 * Deletes a member's rows: the person, enrolled faces and perk awards (cascade); faces and
 * sightings that named them keep their anonymous counts with person_id set to NULL (foreign keys).
 * Returns the blob keys of the enrolled images so the caller can delete them.
 */
export async function deletePersonRows(db: Knex, personId: string): Promise<string[]> {
  return db.transaction(async (trx) => {
    const faces = await trx('person_faces').where('person_id', personId).select('blob_key');
    await trx('people').where('id', personId).delete();
    return faces.map((f: { blob_key: string }) => f.blob_key);
  });
}

export type MemberSummary = { id: string; externalId: string | null; displayName: string };

/** Names of a merchant's members by id (for identify answers); ids of other merchants are dropped. */
export async function memberSummaries(db: Knex, merchantId: string, ids: string[]): Promise<Map<string, MemberSummary>> {
  if (ids.length === 0) return new Map();
  const rows = await Person.query(db).where('merchant_id', merchantId).whereIn('id', ids);
  return new Map(rows.map((p) => [p.id, { id: p.id, externalId: p.externalId, displayName: p.displayName }]));
}
