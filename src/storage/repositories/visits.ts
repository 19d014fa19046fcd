/** Visits of members and visitors as analytics sessionised them (read only here). */
import type { Knex } from 'knex';
import type { SubjectKind } from '../../gallery/gallery.js';
import { pageOf, type Page } from './keyset.js';

export type Visit = { id: number; storeId: string; startedAt: Date; endedAt: Date; sightings: number };
export type VisitKeyset = { startedAt: string; id: number };
export type Subject = { merchantId: string; kind: SubjectKind; id: string };

/** A subject's visits at its merchant's stores, latest first. */
export async function listSubjectVisits(db: Knex, subject: Subject, page: { after?: VisitKeyset; limit: number }): Promise<Page<Visit>> {
  const query = db('visits')
    .where({ merchant_id: subject.merchantId, subject_kind: subject.kind, subject_id: subject.id })
    .select('id', 'store_id', 'started_at', 'ended_at', 'sightings');
  const after = page.after;
  if (after) {
    const startedAt = new Date(after.startedAt);
    query.where((w) => w.where('started_at', '<', startedAt).orWhere((same) => same.where('started_at', startedAt).where('id', '<', after.id)));
  }
  const rows: { id: number | string; store_id: string; started_at: Date; ended_at: Date; sightings: number }[] = await query
    .orderBy('started_at', 'desc')
    .orderBy('id', 'desc')
    .limit(page.limit + 1);
  const visits = rows.map((r) => ({ id: Number(r.id), storeId: r.store_id, startedAt: r.started_at, endedAt: r.ended_at, sightings: r.sightings }));
  return pageOf(visits, page.limit, (v) => ({ startedAt: v.startedAt.toISOString(), id: v.id }));
}
