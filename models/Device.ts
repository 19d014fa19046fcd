import { BaseModel } from './base.js';

export class Device extends BaseModel {
  static tableName = 'devices';

  id!: string;
  storeId!: string;
  name!: string;
  createdAt!: Date;
}
