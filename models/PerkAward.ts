import { BaseModel } from './base.js';

export class PerkAward extends BaseModel {
  static tableName = 'perk_awards';

  id!: string;
  personId!: string;
  storeId!: string;
  captureId!: string;
  faceIndex!: number;
  points!: number;
  awardedAt!: Date;
}
