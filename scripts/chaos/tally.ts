/**
 * Where a set of captures stands, read from MySQL (the source of truth for a capture's state): how
 * many are done, failed or still pending, and how many result rows were written twice.
 */
import type { Knex } from 'knex';

export type CaptureTally = {
  done: number;
  failed: number;
  /** Neither done nor failed yet (or not found at all). */
  pending: number;
  /** Faces beyond the capture's face count, plus sightings beyond one per face. */
  duplicated: number;
  /** Failure codes of the failed captures, with their counts. */
  failures: Map<string, number>;
};

type Row = { status: string; error_code: string | null; face_count: number | null; faces: number; sightings: number };

export async function tallyCaptures(db: Knex, captureIds: string[]): Promise<CaptureTally> {
  const tally: CaptureTally = { done: 0, failed: 0, pending: 0, duplicated: 0, failures: new Map() };
  for (let i = 0; i < captureIds.length; i += 500) {
    const rows: Row[] = await db('captures as c')
      .whereIn('c.id', captureIds.slice(i, i + 500))
      .select('c.status', 'c.error_code', 'c.face_count')
      .select(db.raw('(SELECT COUNT(*) FROM faces f WHERE f.capture_id = c.id) AS faces'))
      .select(db.raw('(SELECT COUNT(*) FROM sightings s WHERE s.capture_id = c.id) AS sightings'));
    tally.pending += Math.min(500, captureIds.length - i) - rows.length;
    for (const row of rows) {
      if (row.status === 'done') tally.done++;
      else if (row.status === 'failed') {
        tally.failed++;
        const code = row.error_code ?? 'unknown';
        tally.failures.set(code, (tally.failures.get(code) ?? 0) + 1);
      } else tally.pending++;
      const faces = Number(row.faces);
      tally.duplicated += Math.max(0, faces - (row.face_count ?? faces)) + Math.max(0, Number(row.sightings) - faces);
    }
  }
  return tally;
}
