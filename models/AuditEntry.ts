import type { SubjectKind } from '../src/gallery/gallery.js';
import type { Role } from '../src/storage/repositories/principal.js';
import { BaseModel } from './base.js';

export const AUDIT_ACTIONS = [
  'member.created', 'member.updated', 'member.erased', 'face.enrolled', 'face.removed', 'points.redeemed',
  'visitor.merged', 'visitor.linked', 'face.rejected', 'change.undone',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** One change to a member's identity or points: who (the API key and its role), when, what. */
export class AuditEntry extends BaseModel {
  static tableName = 'audit_entries';
  static jsonAttributes = ['details'];

  id!: number;
  merchantId!: string;
  actorKeyId!: string;
  actorRole!: Role;
  action!: AuditAction;
  subjectKind!: SubjectKind;
  subjectId!: string;
  /** Ids and field names only: the trail outlives an erased member and must not keep their data. */
  details!: Record<string, unknown>;
  createdAt!: Date;
}
