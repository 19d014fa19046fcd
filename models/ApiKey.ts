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
  label!: string | null;
  createdAt!: Date;
  /** A key past its expiry is refused like a revoked one. */
  expiresAt!: Date | null;
  /** Updated at most once a minute per key. */
  lastUsedAt!: Date | null;
  revokedAt!: Date | null;
}
