import { BaseModel } from './base.js';

/** An anonymous returning subject, per merchant. */
export class Visitor extends BaseModel {
  static tableName = 'visitors';

  id!: string;
  merchantId!: string;
  firstSeenAt!: Date;
  lastSeenAt!: Date;
  createdAt!: Date;
}
