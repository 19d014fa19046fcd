/**
 * Changes to a member's identity, each with its audit entry in the same transaction. The gallery
 * and blob sides of erasure and face removal stay with the caller (they cannot join a transaction).
 */
import type { Knex } from 'knex';
import type { Person } from '../../models/Person.js';
import type { PersonFace } from '../../models/PersonFace.js';
import { recordAudit, type Actor } from '../storage/repositories/audit.js';
import { forgetSubjectEmbeddings } from '../storage/repositories/rejections.js';
import { anonymiseSubject } from './analytics/index.js';
import { createPerson, deletePersonFace, deletePersonRows, updatePerson } from '../storage/repositories/people.js';

const member = (person: Pick<Person, 'id'>) => ({ kind: 'member' as const, id: person.id });

export function createMember(db: Knex, actor: Actor, input: { merchantId: string; externalId: string | null; displayName: string }): Promise<Person> {
  return db.transaction(async (trx) => {
    const person = await createPerson(trx, input);
    await recordAudit(trx, { merchantId: person.merchantId, actor, action: 'member.created', subject: member(person) });
    return person;
  });
}

/** The audit entry names the fields changed, not their values (they would outlive an erasure). */
export function updateMember(db: Knex, actor: Actor, person: Person, changes: { displayName?: string; externalId?: string | null }): Promise<Person> {
  return db.transaction(async (trx) => {
    const updated = await updatePerson(trx, person.id, changes);
    await recordAudit(trx, { merchantId: person.merchantId, actor, action: 'member.updated', subject: member(person), details: { fields: Object.keys(changes) } });
    return updated;
  });
}

export async function recordEnrolment(db: Knex, actor: Actor, person: Person, faceId: string): Promise<void> {
  await recordAudit(db, { merchantId: person.merchantId, actor, action: 'face.enrolled', subject: member(person), details: { faceId } });
}

/** Deletes the face's row; answers whether its image is still used by another face. */
export function removeFaceRow(db: Knex, actor: Actor, person: Person, face: PersonFace): Promise<{ imageStillUsed: boolean }> {
  return db.transaction(async (trx) => {
    const outcome = await deletePersonFace(trx, face);
    await recordAudit(trx, { merchantId: person.merchantId, actor, action: 'face.removed', subject: member(person), details: { faceId: face.id } });
    return outcome;
  });
}

/** The person's rows go; their sightings, visits and analytics stay, counted under a fresh anonymous id. */
export function eraseMemberRows(db: Knex, actor: Actor, person: Person): Promise<void> {
  return db.transaction(async (trx) => {
    await forgetSubjectEmbeddings(trx, member(person));
    await anonymiseSubject(trx, person.merchantId, person.id);
    await deletePersonRows(trx, person.id);
    await recordAudit(trx, { merchantId: person.merchantId, actor, action: 'member.erased', subject: member(person) });
  });
}
