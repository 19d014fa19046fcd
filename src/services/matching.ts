/**
 * Matching: a capture's faces against the merchant's members first, then its anonymous visitors,
 * else a new visitor whose vector is stored for future reference. Two faces of one capture are
 * never given the same subject. A new visitor's neighbours that came close to the threshold
 * without reaching it are suggested as merges.
 */
import type { Gallery, GalleryHit, SubjectKind } from '../gallery/gallery.js';
import { newVisitorIdOf, type FaceMatch } from '../queue/contract.js';
import { cosineSimilarity } from '../vectors.js';
import type { SuggestionCandidate } from '../storage/repositories/suggestions.js';

export type FaceCandidates = { faceIndex: number; hits: GalleryHit[] };

/**
 * Assigns subjects to faces greedily by descending similarity, so the closest pair wins a
 * contested subject and each subject and each face is used at most once.
 */
export function assignExclusive(candidates: FaceCandidates[], threshold: number, taken: ReadonlySet<string> = new Set()): Map<number, GalleryHit> {
  const pairs = candidates
    .flatMap(({ faceIndex, hits }) => hits.filter((hit) => hit.similarity >= threshold).map((hit) => ({ faceIndex, hit })))
    .sort((a, b) => b.hit.similarity - a.hit.similarity || a.faceIndex - b.faceIndex);
  const assigned = new Map<number, GalleryHit>();
  const used = new Set(taken);
  for (const { faceIndex, hit } of pairs) {
    if (assigned.has(faceIndex) || used.has(hit.subjectId)) continue;
    assigned.set(faceIndex, hit);
    used.add(hit.subjectId);
  }
  return assigned;
}


/**
 * "Not this person": drops a face's hit on a subject when the face is closer to a face rejected
 * for that subject than to the subject's own vectors (the hit's similarity).
 */
export function dropRejected(candidates: FaceCandidates[], embeddings: Float32Array[], rejected: ReadonlyMap<string, Float32Array[]>): FaceCandidates[] {
  if (rejected.size === 0) return candidates;
  return candidates.map(({ faceIndex, hits }) => ({
    faceIndex,
    hits: hits.filter((hit) => !(rejected.get(hit.subjectId) ?? []).some((r) => r.length === embeddings[faceIndex].length && cosineSimilarity(embeddings[faceIndex], r) > hit.similarity)),
  }));
}

/**
 * The candidates with the hits that rejected faces veto dropped, reading the rejections only of
 * subjects that reach `threshold` (below it a hit matches nobody anyway).
 */
export async function dropRejectedHits(
  candidates: FaceCandidates[],
  embeddings: Float32Array[],
  threshold: number,
  rejectedFor: (subjectIds: string[]) => Promise<ReadonlyMap<string, Float32Array[]>>,
): Promise<FaceCandidates[]> {
  const close = [...new Set(candidates.flatMap((c) => c.hits.filter((hit) => hit.similarity >= threshold).map((hit) => hit.subjectId)))];
  return close.length === 0 ? candidates : dropRejected(candidates, embeddings, await rejectedFor(close));
}

/** The embeddings of faces rejected for these subjects (in the matcher's pack). */
export interface RejectionStore {
  rejectedFor(merchantId: string, subjectIds: string[]): Promise<Map<string, Float32Array[]>>;
}

export interface VisitorStore {
  withVisitorLock<T>(merchantId: string, work: () => Promise<T>): Promise<T>;
  createVisitors(ids: string[], merchantId: string, seenAt: Date): Promise<void>;
  /** Which of `ids` have a visitor row. */
  existingVisitors(ids: string[]): Promise<Set<string>>;
}

export interface SuggestionStore {
  recordSuggestions(merchantId: string, candidates: SuggestionCandidate[]): Promise<void>;
}

/** `suggestion`: the least similarity at which a new visitor's neighbour is suggested as a merge. */
export type MatchThresholds = { member: number; visitor: number; suggestion: number };

const CANDIDATES_PER_FACE = 5;

export class MatchService {
  constructor(
    private readonly gallery: Gallery,
    private readonly visitors: VisitorStore,
    private readonly suggestions: SuggestionStore,
    private readonly thresholds: MatchThresholds,
    private readonly rejections: RejectionStore = { rejectedFor: async () => new Map() },
  ) {}

  async matchCapture(input: {
    merchantId: string;
    captureId: string;
    capturedAt: Date;
    embeddings: Float32Array[];
  }): Promise<FaceMatch[]> {
    const { merchantId, captureId, capturedAt, embeddings } = input;
    const matches: FaceMatch[] = [];
    const taken = new Set<string>();
    const record = (faceIndex: number, kind: SubjectKind, hit: GalleryHit, newVisitor: boolean) => {
      matches.push({ faceIndex, kind, subjectId: hit.subjectId, similarity: hit.similarity, newVisitor });
      taken.add(hit.subjectId);
    };
    const unmatched = () => embeddings.map((_, faceIndex) => faceIndex).filter((i) => !matches.some((m) => m.faceIndex === i));
    const neighbours = new Map<number, { kind: SubjectKind; hit: GalleryHit }[]>();
    const searchAll = async (kind: SubjectKind, faces: number[]): Promise<FaceCandidates[]> => {
      const hits = await this.gallery.search(kind, merchantId, faces.map((faceIndex) => embeddings[faceIndex]), CANDIDATES_PER_FACE);
      const found = faces.map((faceIndex, i) => ({ faceIndex, hits: hits[i] }));
      const candidates = await dropRejectedHits(found, embeddings, this.thresholds[kind], (ids) => this.rejections.rejectedFor(merchantId, ids));
      for (const { faceIndex, hits: kept } of candidates) neighbours.set(faceIndex, [...(neighbours.get(faceIndex) ?? []), ...kept.map((hit) => ({ kind, hit }))]);
      return candidates;
    };

    for (const [faceIndex, hit] of assignExclusive(await searchAll('member', unmatched()), this.thresholds.member, taken)) {
      record(faceIndex, 'member', hit, false);
    }
    const visitorOf = (faceIndex: number) => newVisitorIdOf(captureId, faceIndex);
    for (const [faceIndex, hit] of assignExclusive(await searchAll('visitor', unmatched()), this.thresholds.visitor, taken)) {
      // A retried job finds the visitor its first attempt created: still the same new visitor.
      record(faceIndex, 'visitor', hit, hit.subjectId === visitorOf(faceIndex));
    }

    const remaining = unmatched();
    if (remaining.length > 0) {
      await this.visitors.withVisitorLock(merchantId, async () => {
        // Another capture may have created a visitor for this face while we were searching.
        const fresh = assignExclusive(await searchAll('visitor', remaining), this.thresholds.visitor, taken);
        for (const [faceIndex, hit] of fresh) record(faceIndex, 'visitor', hit, false);
        const created = remaining.filter((faceIndex) => !fresh.has(faceIndex)).map((faceIndex) => ({ faceIndex, visitorId: visitorOf(faceIndex) }));
        if (created.length === 0) return;
        const ids = created.map(({ visitorId }) => visitorId);
        await this.visitors.createVisitors(ids, merchantId, capturedAt);
        await this.gallery.upsertMany(
          'visitor',
          merchantId,
          created.map(({ faceIndex, visitorId }) => ({ subjectId: visitorId, vectorId: visitorId, embedding: embeddings[faceIndex] })),
        );
        // Retention may have purged a visitor before its vector existed: no vector outlives its visitor.
        const existing = await this.visitors.existingVisitors(ids);
        for (const visitorId of ids.filter((id) => !existing.has(id))) await this.gallery.deleteSubject('visitor', merchantId, visitorId);
        for (const { faceIndex, visitorId } of created) record(faceIndex, 'visitor', { subjectId: visitorId, similarity: 1 }, true);
      });
    }
    await this.suggestions.recordSuggestions(merchantId, this.suggestionsFor(matches, neighbours));
    return matches.sort((a, b) => a.faceIndex - b.faceIndex);
  }

  /**
   * Each new visitor's neighbours in [suggestion, match threshold) — a retried job's too, whose
   * visitor search found the visitor its first attempt created. A subject given to another face of
   * the capture is someone else, never suggested.
   */
  private suggestionsFor(matches: FaceMatch[], neighbours: Map<number, { kind: SubjectKind; hit: GalleryHit }[]>): SuggestionCandidate[] {
    const threshold = { member: this.thresholds.member, visitor: this.thresholds.visitor };
    const inCapture = new Set(matches.map((m) => m.subjectId));
    const candidates = new Map<string, SuggestionCandidate>();
    for (const match of matches.filter((m) => m.newVisitor)) {
      for (const { kind, hit } of neighbours.get(match.faceIndex) ?? []) {
        if (inCapture.has(hit.subjectId) || hit.similarity < this.thresholds.suggestion || hit.similarity >= threshold[kind]) continue;
        const key = `${match.subjectId}:${hit.subjectId}`;
        if ((candidates.get(key)?.similarity ?? -Infinity) < hit.similarity) {
          candidates.set(key, { visitorId: match.subjectId, other: { kind, id: hit.subjectId }, similarity: hit.similarity });
        }
      }
    }
    return [...candidates.values()];
  }
}
