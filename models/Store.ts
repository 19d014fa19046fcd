import { BaseModel } from './base.js';

export class Store extends BaseModel {
  static tableName = 'stores';

  id!: string;
  merchantId!: string;
  name!: string;
  /** IANA zone, e.g. Europe/Paris: analytics buckets are local to the store. */
  timezone!: string;
  createdAt!: Date;
}
