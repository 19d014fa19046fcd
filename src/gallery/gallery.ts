/** The face gallery: nearest-neighbour search over embeddings, per merchant and model pack. */

export const SUBJECT_KINDS = ['member', 'visitor'] as const;
export type SubjectKind = (typeof SUBJECT_KINDS)[number];

export type GalleryHit = { subjectId: string; similarity: number };
export type GallerySubject = { kind: SubjectKind; subjectId: string };

export interface Gallery {
  /** Adds or replaces one vector (`vectorId`) of a subject. Idempotent. */
  upsert(kind: SubjectKind, merchantId: string, subjectId: string, vectorId: string, embedding: Float32Array): Promise<void>;
  /** Adds or replaces several vectors in one request. Idempotent. */
  upsertMany(kind: SubjectKind, merchantId: string, vectors: { subjectId: string; vectorId: string; embedding: Float32Array }[]): Promise<void>;
  /** For each embedding (one request for all of them): best similarity per subject, highest first. */
  search(kind: SubjectKind, merchantId: string, embeddings: Float32Array[], limit: number): Promise<GalleryHit[][]>;
  /** Erases every vector of a subject. */
  deleteSubject(kind: SubjectKind, merchantId: string, subjectId: string): Promise<void>;
  /** Erases these vectors (by id), in every pack's collection. */
  deleteVectors(kind: SubjectKind, merchantId: string, vectorIds: string[]): Promise<void>;
  /** The ids of a subject's vectors, in every pack's collection. */
  subjectVectorIds(kind: SubjectKind, merchantId: string, subjectId: string): Promise<string[]>;
  /**
   * Gives these vectors of `from` (ids, embeddings kept) to `to`, in every pack's collection: the
   * metadata changes within one kind's collection, across kinds they are copied then deleted.
   * Idempotent: a vector already moved is no longer found under `from`.
   */
  moveVectors(merchantId: string, from: GallerySubject, to: GallerySubject, vectorIds: string[]): Promise<void>;
  /** Counts the vectors held for a subject (erasure checks, tests). */
  countSubjectVectors(kind: SubjectKind, merchantId: string, subjectId: string): Promise<number>;
  /** Every vector id held for `kind` at the merchant (a reembed uses it to find what is missing). */
  vectorIds(kind: SubjectKind, merchantId: string): Promise<Set<string>>;
  heartbeat(): Promise<void>;
}
