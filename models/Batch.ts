import { BaseModel } from './base.js';

export class Batch extends BaseModel {
  static tableName = 'batches';

  id!: string;
  deviceId!: string;
  storeId!: string;
  merchantId!: string;
  createdAt!: Date;
  completedAt!: Date | null;
}
