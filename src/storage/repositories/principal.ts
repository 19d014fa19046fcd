/**
 * Who is calling, as resolved from an API key. Repositories take it to scope every lookup to
 * the caller's tenant: a row outside the scope is reported as missing (the API answers 404).
 */
export type Principal =
  | { role: 'admin'; keyId: string }
  | { role: 'merchant'; keyId: string; merchantId: string }
  /** A device, with its store's time zone (read with the key: intake reads EXIF wall-clock times in it). */
  | { role: 'device'; keyId: string; merchantId: string; storeId: string; storeTimeZone: string; deviceId: string };

export type Role = Principal['role'];

/** The merchant a principal is confined to, or null for admin (every merchant). */
export function merchantScope(principal: Principal): string | null {
  return principal.role === 'admin' ? null : principal.merchantId;
}

/** The MySQL errno of a driver error, or of the native error objection wraps it in. */
function errnoOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { errno?: number; nativeError?: { errno?: number } };
  return e.errno ?? e.nativeError?.errno;
}

/** MySQL/MariaDB duplicate-key error (ER_DUP_ENTRY). */
export function isDuplicateKeyError(error: unknown): boolean {
  return errnoOf(error) === 1062;
}

/** InnoDB deadlock or lock wait timeout: the transaction can simply be retried. */
export function isRetryableTransactionError(error: unknown): boolean {
  const errno = errnoOf(error);
  return errno === 1213 || errno === 1205;
}
