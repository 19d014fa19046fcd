import { BaseModel } from './base.js';

/** A member: a customer of one merchant who enrolled a face. */
export class Person extends BaseModel {
  static tableName = 'people';

  id!: string;
  merchantId!: string;
  externalId!: string | null;
  displayName!: string;
  points!: number;
  lastSeenAt!: Date | null;
  createdAt!: Date;
}
