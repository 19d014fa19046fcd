/**
 * Erasure keeps a member's counts but not their id: every analytics row keyed by the subject —
 * subject row, per-store spans, visits, sightings — moves to a fresh random id, so nothing left in
 * the analytics links back to the person (or, through a merchant's own records of our person id,
 * to their externalId). Tables are changed in the aggregate transaction's lock order (the subject
 * row first), so an erasure and a capture of the same member queue instead of deadlocking.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';

/** Runs inside the caller's transaction, before the person's own row is deleted. */
export async function anonymiseSubject(trx: Knex.Transaction, merchantId: string, subjectId: string): Promise<void> {
  const anonymous = randomUUID();
  const rows = { merchant_id: merchantId, subject_id: subjectId };
  await trx('analytics_subjects').where(rows).update({ subject_id: anonymous });
  await trx('analytics_store_subjects').where(rows).update({ subject_id: anonymous });
  await trx('visits').where(rows).update({ subject_id: anonymous });
  await trx('sightings').where(rows).update({ subject_id: anonymous });
}
