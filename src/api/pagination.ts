/**
 * Lists answer `{items, nextCursor}` and take `?cursor=&limit=`. A cursor is the keyset of the
 * last item served (opaque to clients: base64url JSON), so pages stay stable while rows are added.
 */
import { z } from 'zod';
import type { Keyset, Page } from '../storage/repositories/keyset.js';
import { ApiError } from './errors.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

export const pageQuery = {
  cursor: z.string().max(1000).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
};

export function encodeCursor(keyset: Keyset): string {
  return Buffer.from(JSON.stringify(keyset)).toString('base64url');
}

/** The keyset in a cursor; one that does not decode to the shape `schema` expects is a 400. */
export function decodeCursor<T extends Keyset>(cursor: string | undefined, schema: z.ZodType<T>): T | undefined {
  if (cursor === undefined) return undefined;
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  const result = schema.safeParse(decoded);
  if (!result.success) throw invalidCursor();
  return result.data;
}

/** The answer of a list endpoint: the page's items rendered, and the cursor of the next page. */
export function listBody<Row, Item>(page: Page<Row>, render: (row: Row) => Item): { items: Item[]; nextCursor: string | null } {
  return { items: page.rows.map(render), nextCursor: page.next ? encodeCursor(page.next) : null };
}

const invalidCursor = () => new ApiError(400, 'invalid_cursor', 'the cursor is not one this list returned');
