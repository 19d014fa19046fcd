import { z } from 'zod';
import { isValidTimeZone } from '../services/analytics/time.js';
import { ApiError, describeZodError } from './errors.js';

/** Parses a request part with zod; a failure is a 400 naming the part and the fields. */
export function parse<T extends z.ZodTypeAny>(schema: T, value: unknown, where: 'body' | 'query' | 'path' | 'form'): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ApiError(400, 'validation_error', `invalid ${where}: ${describeZodError(result.error)}`);
  }
  return result.data;
}

export const uuid = z.string().uuid({ message: 'must be a UUID' });
export const idParams = z.object({ id: uuid });

const text = (max: number) =>
  z
    .string()
    .trim()
    .min(1, { message: 'must not be empty' })
    .max(max)
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), { message: 'must not contain control characters' });

export const nameField = text(200);
export const externalIdField = text(200);
export const reasonField = text(200);
/** A client's name for one operation: sent again with a retry, it is answered with the first outcome. */
export const idempotencyKeyField = text(100);

/**
 * An IANA zone, stored with its canonical spelling ("europe/paris" -> "Europe/Paris"). Only the
 * letter case is taken from Intl: it would also rename zones (Asia/Kolkata -> Asia/Calcutta).
 */
export const timezoneField = z
  .string()
  .min(1)
  .max(64)
  .refine(isValidTimeZone, { message: 'must be an IANA time zone such as Europe/Paris' })
  .transform((name) => {
    const resolved = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
    return resolved.toLowerCase() === name.toLowerCase() ? resolved : name;
  });

/** ISO-8601 instant with a zone (Z or ±hh:mm): device clocks without a zone are ambiguous. */
export const isoInstant = z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time with a zone, e.g. 2026-11-27T10:15:00Z' });
