/** Members (people) of a merchant and their enrolled faces. */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { Person } from '../../../models/Person.js';
import { PersonFace } from '../../../models/PersonFace.js';
import { pageOf, type Page } from './keyset.js';
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

/** The enrolled faces of these members, oldest first. */
export async function listPersonFaces(db: Knex, personIds: string[]): Promise<PersonFace[]> {
  if (personIds.length === 0) return [];
  return PersonFace.query(db).whereIn('person_id', personIds).orderBy('created_at').orderBy('id');
}

/**
 * Deletes a member's rows: the person, enrolled faces, perk awards and redemptions (cascade); faces and
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

export const PEOPLE_SORTS = ['lastSeen', 'points'] as const;
export type PeopleSort = (typeof PEOPLE_SORTS)[number];

/** Where a page of members continues: the last row's sort value (null: never seen) and id. */
export type PeopleKeyset = { value: string | number | null; id: string };

export type PeopleFilter = { merchantId: string; q?: string; externalId?: string; sort: PeopleSort; after?: PeopleKeyset; limit: number };

/**
 * A merchant's members, most recently seen or most points first, ties by id (descending, so one
 * index serves each order). Never-seen members come last: MySQL sorts NULL below every value.
 * `q` matches anywhere in the display name, ignoring case (the database's collation is binary).
 */
export async function listPeople(db: Knex, filter: PeopleFilter): Promise<Page<Person>> {
  const column = filter.sort === 'points' ? 'points' : 'last_seen_at';
  const query = Person.query(db).where('merchant_id', filter.merchantId);
  if (filter.q !== undefined) query.whereRaw('LOWER(display_name) LIKE ?', [`%${escapeLike(filter.q.toLowerCase())}%`]);
  if (filter.externalId !== undefined) query.where('external_id', filter.externalId);
  const after = filter.after;
  if (after) {
    const value = column === 'last_seen_at' && after.value !== null ? new Date(after.value) : after.value;
    query.where((w) => {
      if (value === null) {
        w.whereNull(column).where('id', '<', after.id);
      } else {
        w.where(column, '<', value)
          .orWhere((same) => same.where(column, value).where('id', '<', after.id))
          .orWhereNull(column);
      }
    });
  }
  const rows = await query.orderBy(column, 'desc').orderBy('id', 'desc').limit(filter.limit + 1);
  return pageOf(rows, filter.limit, (p) => ({
    value: filter.sort === 'points' ? p.points : (p.lastSeenAt?.toISOString() ?? null),
    id: p.id,
  }));
}

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/** Renames a member or changes its external id (null clears it); a taken external id is a DuplicateExternalIdError. */
export async function updatePerson(db: Knex, id: string, changes: { displayName?: string; externalId?: string | null }): Promise<Person> {
  if (Object.keys(changes).length > 0) {
    try {
      await Person.query(db).findById(id).patch(changes);
    } catch (error) {
      if (isDuplicateKeyError(error) && changes.externalId) throw new DuplicateExternalIdError(changes.externalId);
      throw error;
    }
  }
  return Person.query(db).findById(id).throwIfNotFound();
}

export async function findPersonFace(db: Knex, personId: string, faceId: string): Promise<PersonFace | undefined> {
  return PersonFace.query(db).findById(faceId).where('person_id', personId);
}

/** Deletes one enrolled face; answers whether its image is still used by another enrolled face (else the caller deletes it). */
export async function deletePersonFace(db: Knex, face: PersonFace): Promise<{ imageStillUsed: boolean }> {
  return db.transaction(async (trx) => {
    await trx('person_faces').where('id', face.id).delete();
    const others = await trx('person_faces').where('blob_key', face.blobKey).first('id');
    return { imageStillUsed: others !== undefined };
  });
}
