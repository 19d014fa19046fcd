import { BaseModel } from './base.js';

export type ApiKeyRole = 'admin' | 'merchant' | 'device';

/** Only the sha256 (hex) of a key is stored; the key itself is shown once. */
export class ApiKey extends BaseModel {
  static tableName = 'api_keys';

  id!: string;
  keyHash!: string;
  role!: ApiKeyRole;
  /** Null for admin keys; set for merchant and device keys. */
  merchantId!: string | null;
  /** Set for device keys only. */
  deviceId!: string | null;
  createdAt!: Date;
  revokedAt!: Date | null;
}
