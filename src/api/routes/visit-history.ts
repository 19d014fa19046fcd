/** A member's or a visitor's visits, paged the same way wherever they are listed. */
import type { Knex } from 'knex';
import { z } from 'zod';
import { listSubjectVisits, type Subject } from '../../storage/repositories/visits.js';
import { decodeCursor, listBody, pageQuery } from '../pagination.js';

export const visitHistoryQuery = z.strictObject(pageQuery);
const visitCursor = z.strictObject({ startedAt: z.iso.datetime(), id: z.number().int() });

export async function visitHistory(db: Knex, subject: Subject, query: z.infer<typeof visitHistoryQuery>) {
  const page = await listSubjectVisits(db, subject, { after: decodeCursor(query.cursor, visitCursor), limit: query.limit });
  return listBody(page, (v) => ({ storeId: v.storeId, startedAt: v.startedAt.toISOString(), endedAt: v.endedAt.toISOString(), sightings: v.sightings }));
}
