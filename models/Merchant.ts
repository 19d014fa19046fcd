import { BaseModel } from './base.js';

export class Merchant extends BaseModel {
  static tableName = 'merchants';

  id!: string;
  name!: string;
  createdAt!: Date;
}
