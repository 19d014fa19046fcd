/** The audit trail: one row per change to a member's identity or points. */
import type { Knex } from 'knex';
import { AuditEntry, type AuditAction } from '../../../models/AuditEntry.js';
import type { SubjectKind } from '../../gallery/gallery.js';
import { pageOf, type Page } from './keyset.js';
import type { Principal } from './principal.js';

/** Who made a change: the API key and its role. */
export type Actor = Pick<Principal, 'keyId' | 'role'>;

export type AuditRecord = {
  merchantId: string;
  actor: Actor;
  action: AuditAction;
  subject: { kind: SubjectKind; id: string };
  details?: Record<string, unknown>;
};

/** Records a change and answers the entry's id; pass the change's transaction so the entry exists exactly when the change does. */
export async function recordAudit(db: Knex, record: AuditRecord): Promise<number> {
  const entry = await AuditEntry.query(db).insert({
    merchantId: record.merchantId,
    actorKeyId: record.actor.keyId,
    actorRole: record.actor.role,
    action: record.action,
    subjectKind: record.subject.kind,
    subjectId: record.subject.id,
    details: record.details ?? {},
  });
  return Number(entry.id);
}

/** An entry of the merchant (any merchant's for null). */
export async function findAuditEntry(db: Knex, id: number, merchantId: string | null): Promise<AuditEntry | undefined> {
  const query = AuditEntry.query(db).findById(id);
  if (merchantId !== null) query.where('merchant_id', merchantId);
  return query;
}

/** Entries newest first: of one merchant, or of every merchant (merchantId null). */
export async function listAudit(db: Knex, filter: { merchantId: string | null; afterId?: number; limit: number }): Promise<Page<AuditEntry>> {
  const query = AuditEntry.query(db);
  if (filter.merchantId !== null) query.where('merchant_id', filter.merchantId);
  if (filter.afterId !== undefined) query.where('id', '<', filter.afterId);
  const rows = await query.orderBy('id', 'desc').limit(filter.limit + 1);
  return pageOf(rows, filter.limit, (entry) => ({ id: Number(entry.id) }));
}
