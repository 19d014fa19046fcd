/**
 * Suggested merges: pairs of a visitor and another visitor or a member that are probably one person
 * (see MatchService, which finds them, and the merge_suggestions migration).
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { SubjectKind } from '../../gallery/gallery.js';
import { pageOf, type Page } from './keyset.js';

export type SubjectRef = { kind: SubjectKind; id: string };

/** A new visitor and a subject it came close to. */
export type SuggestionCandidate = { visitorId: string; other: SubjectRef; similarity: number };

/** `a` is always a visitor; `storeIds` are the stores where both were seen (the visitor's, for a member). */
export type MergeSuggestion = { id: string; a: SubjectRef; b: SubjectRef; similarity: number; storeIds: string[] };

export type SuggestionKeyset = { similarity: number; id: string };

type Row = { id: string; visitor_id: string; other_kind: SubjectKind; other_id: string; similarity: number };

/** One order per pair of visitors (the smaller id first), so a pair is stored once whichever side came later. */
function normalised({ visitorId, other, similarity }: SuggestionCandidate): SuggestionCandidate {
  return other.kind === 'visitor' && other.id < visitorId ? { visitorId: other.id, other: { kind: 'visitor', id: visitorId }, similarity } : { visitorId, other, similarity };
}

export class MergeSuggestionRepository {
  constructor(private readonly db: Knex) {}

  /**
   * Stores the pairs not stored yet (a dismissed pair stays dismissed). INSERT IGNORE also skips a
   * pair whose side was deleted meanwhile (a foreign key failure is then only a warning).
   */
  async recordSuggestions(merchantId: string, candidates: SuggestionCandidate[]): Promise<void> {
    if (candidates.length === 0) return;
    await this.db('merge_suggestions')
      .insert(
        candidates.map(normalised).map(({ visitorId, other, similarity }) => ({
          id: randomUUID(),
          merchant_id: merchantId,
          visitor_id: visitorId,
          other_kind: other.kind,
          other_visitor_id: other.kind === 'visitor' ? other.id : null,
          person_id: other.kind === 'member' ? other.id : null,
          other_id: other.id,
          similarity,
        })),
      )
      .onConflict()
      .ignore();
  }
}

/**
 * A merchant's open suggestions, most similar first (ties by id, descending). A pair of visitors is
 * listed once both were seen at one store (at `storeId`, if given); a member enrols at the merchant,
 * not at a store, so a visitor–member pair needs only the visitor seen (at `storeId`).
 */
export async function listSuggestions(
  db: Knex,
  filter: { merchantId: string; storeId?: string; after?: SuggestionKeyset; limit: number },
): Promise<Page<MergeSuggestion>> {
  const seenAt = (subjectColumn: string, store: string) =>
    db('analytics_store_subjects as seen').where('seen.store_id', db.ref(store)).where('seen.subject_id', db.ref(subjectColumn)).select(db.raw('1'));
  const query = db('merge_suggestions as s').where('s.merchant_id', filter.merchantId).whereNull('s.dismissed_at');
  if (filter.storeId === undefined) {
    query.whereExists(
      db('analytics_store_subjects as v')
        .whereRaw('v.merchant_id = s.merchant_id')
        .whereRaw('v.subject_id = s.visitor_id')
        .where((shared) => shared.whereRaw("s.other_kind = 'member'").orWhereExists(seenAt('s.other_id', 'v.store_id')))
        .select(db.raw('1')),
    );
  } else {
    const storeId = filter.storeId;
    query
      .whereExists(db('analytics_store_subjects as v').where('v.store_id', storeId).whereRaw('v.subject_id = s.visitor_id').select(db.raw('1')))
      .where((shared) =>
        shared
          .whereRaw("s.other_kind = 'member'")
          .orWhereExists(db('analytics_store_subjects as o').where('o.store_id', storeId).whereRaw('o.subject_id = s.other_id').select(db.raw('1'))),
      );
  }
  const after = filter.after;
  if (after) query.where((w) => w.where('s.similarity', '<', after.similarity).orWhere((same) => same.where('s.similarity', after.similarity).where('s.id', '<', after.id)));
  const rows: Row[] = await query
    .orderBy('s.similarity', 'desc')
    .orderBy('s.id', 'desc')
    .limit(filter.limit + 1)
    .select('s.id', 's.visitor_id', 's.other_kind', 's.other_id', 's.similarity');
  const stores = await storesSeen(db, filter.merchantId, rows.flatMap((r) => [r.visitor_id, r.other_id]));
  const suggestions = rows.map((r) => {
    const visitorStores = stores.get(r.visitor_id) ?? [];
    const otherStores = new Set(stores.get(r.other_id) ?? []);
    return {
      id: r.id,
      a: { kind: 'visitor' as const, id: r.visitor_id },
      b: { kind: r.other_kind, id: r.other_id },
      similarity: r.similarity,
      storeIds: r.other_kind === 'member' ? visitorStores : visitorStores.filter((store) => otherStores.has(store)),
    };
  });
  return pageOf(suggestions, filter.limit, (s) => ({ similarity: s.similarity, id: s.id }));
}

async function storesSeen(db: Knex, merchantId: string, subjectIds: string[]): Promise<Map<string, string[]>> {
  if (subjectIds.length === 0) return new Map();
  const rows: { subject_id: string; store_id: string }[] = await db('analytics_store_subjects')
    .where('merchant_id', merchantId)
    .whereIn('subject_id', [...new Set(subjectIds)])
    .orderBy('store_id')
    .select('subject_id', 'store_id');
  const stores = new Map<string, string[]>();
  for (const row of rows) stores.set(row.subject_id, [...(stores.get(row.subject_id) ?? []), row.store_id]);
  return stores;
}

/**
 * Marks the pair dismissed, in either order, if it is a suggestion of the merchant (`merchantId`
 * null: any merchant's). Answers whether it was one.
 */
export async function dismissSuggestion(db: Knex, pair: { a: SubjectRef; b: SubjectRef }, merchantId: string | null): Promise<boolean> {
  const [visitor, other] = pair.a.kind === 'visitor' ? [pair.a, pair.b] : [pair.b, pair.a];
  if (visitor.kind !== 'visitor') return false;
  const { visitorId, other: side } = normalised({ visitorId: visitor.id, other, similarity: 0 });
  const query = db('merge_suggestions').where({ visitor_id: visitorId, other_id: side.id, other_kind: side.kind });
  if (merchantId !== null) query.where('merchant_id', merchantId);
  const found = await query.clone().first('id', 'dismissed_at');
  if (!found) return false;
  if (found.dismissed_at === null) await query.update({ dismissed_at: db.fn.now(3) });
  return true;
}
