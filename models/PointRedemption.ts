import { BaseModel } from './base.js';

/** Points a member spent; with PerkAward, the history behind Person.points. */
export class PointRedemption extends BaseModel {
  static tableName = 'point_redemptions';

  id!: string;
  personId!: string;
  points!: number;
  reason!: string;
  idempotencyKey!: string;
  /** The member's balance right after this redemption. */
  balanceAfter!: number;
  redeemedAt!: Date;
}
