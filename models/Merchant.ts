import { BaseModel } from './base.js';

export class Merchant extends BaseModel {
  static tableName = 'merchants';

  id!: string;
  name!: string;
  /** Keep a face crop of each face seen or enrolled (src/services/face-crops.ts). */
  keepFaceCrops!: boolean;
  createdAt!: Date;

  /** MariaDB answers a BOOLEAN column as 0 or 1. */
  $parseDatabaseJson(json: Record<string, unknown>) {
    const parsed = super.$parseDatabaseJson(json);
    if ('keepFaceCrops' in parsed) parsed.keepFaceCrops = Boolean(parsed.keepFaceCrops);
    return parsed;
  }
}
