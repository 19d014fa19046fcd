import { ChromaClient, ChromaNotFoundError, type Collection } from 'chromadb';
import { PACK_NAMES } from '../config.js';
import { ChromaRecords, ChromaRequestError } from './chroma-records.js';
import type { Gallery, GalleryHit, GallerySubject, SubjectKind } from './gallery.js';

/**
 * Index parameters of new collections. With Chroma's defaults (16 neighbours, ef 100 to build and
 * to search), probes at cosine 0.75 from one of 100,000 random 512-d vectors found it first only
 * 64-72 % of the time; twice the neighbours and build effort found it 96 % of the time, for about
 * 3 ms more per query (`npm run bench:gallery`; README, Benchmarks). They take effect when a
 * collection is created (Chroma 1.0 ignored a later change of ef_search here).
 *
 * sync_threshold 300 instead of 1000: Chroma 1.0's local server makes each upsert cost in proportion
 * to the writes since it last persisted the index (every `sync_threshold` writes), and persisting
 * costs in proportion to the collection. Over 3000 one-vector upserts, as the match stage stores
 * each new visitor (`npm run bench:gallery -- --upserts 3000`), Chroma spent 12.3 ms of CPU per
 * upsert at 20,000 vectors and 16.9 at 100,000, against 23.0 and 24.3 with 1000. 100 was cheaper
 * still on small collections but persists too often on large ones.
 */
const HNSW = { max_neighbors: 32, ef_construction: 200, ef_search: 100, sync_threshold: 300 };

/**
 * Gallery in Chroma. One collection per (pack, kind, merchant): vectors of different packs are
 * never compared, and a merchant's search never touches another merchant's subjects.
 * Cosine space, so similarity = 1 - distance.
 */
export class ChromaGallery implements Gallery {
  private readonly client: ChromaClient;
  private readonly records: ChromaRecords;
  private readonly collections = new Map<string, Promise<Collection>>();

  constructor(
    url: string,
    private readonly pack: string,
  ) {
    const parsed = new URL(url);
    this.client = new ChromaClient({
      host: parsed.hostname,
      port: Number(parsed.port || (parsed.protocol === 'https:' ? 443 : 80)),
      ssl: parsed.protocol === 'https:',
    });
    this.records = new ChromaRecords(parsed);
  }

  collectionName(kind: SubjectKind, merchantId: string, pack = this.pack): string {
    return `${pack}-${kind}s-${merchantId}`;
  }

  /** A pack's collection of `kind` at the merchant (the active pack's by default), created if missing. */
  private collection(kind: SubjectKind, merchantId: string, pack = this.pack): Promise<Collection> {
    const name = this.collectionName(kind, merchantId, pack);
    let pending = this.collections.get(name);
    if (!pending) {
      pending = this.client.getOrCreateCollection({
        name,
        embeddingFunction: null as never,
        configuration: { hnsw: { space: 'cosine', ...HNSW } },
      });
      // A failed lookup (Chroma down) must not be cached.
      pending.catch(() => this.collections.delete(name));
      this.collections.set(name, pending);
    }
    return pending;
  }

  /** A record call on a collection; a collection deleted behind our back is looked up again next time. */
  private async onCollection<T>(kind: SubjectKind, merchantId: string, call: (id: string) => Promise<T>): Promise<T> {
    const collection = await this.collection(kind, merchantId);
    try {
      return await call(collection.id);
    } catch (error) {
      if (error instanceof ChromaRequestError && error.status === 404) this.collections.delete(this.collectionName(kind, merchantId));
      throw error;
    }
  }

  async upsert(kind: SubjectKind, merchantId: string, subjectId: string, vectorId: string, embedding: Float32Array): Promise<void> {
    await this.upsertMany(kind, merchantId, [{ subjectId, vectorId, embedding }]);
  }

  async upsertMany(kind: SubjectKind, merchantId: string, vectors: { subjectId: string; vectorId: string; embedding: Float32Array }[]): Promise<void> {
    if (vectors.length === 0) return;
    await this.onCollection(kind, merchantId, (id) =>
      this.records.upsert(
        id,
        vectors.map((v) => v.vectorId),
        vectors.map((v) => v.embedding),
        vectors.map((v) => ({ subjectId: v.subjectId })),
      ),
    );
  }

  async search(kind: SubjectKind, merchantId: string, embeddings: Float32Array[], limit: number): Promise<GalleryHit[][]> {
    if (embeddings.length === 0) return [];
    // Several vectors may belong to one subject: over-fetch, then keep each subject's best.
    const result = await this.onCollection(kind, merchantId, (id) => this.records.query(id, embeddings, limit * 4, ['distances', 'metadatas']));
    return embeddings.map((_, i) => {
      const best = new Map<string, number>();
      const distances = result.distances?.[i] ?? [];
      const metadatas = result.metadatas?.[i] ?? [];
      for (let j = 0; j < distances.length; j++) {
        const subjectId = metadatas[j]?.subjectId;
        const distance = distances[j];
        if (typeof subjectId !== 'string' || distance == null) continue;
        const similarity = 1 - distance;
        if (similarity > (best.get(subjectId) ?? -Infinity)) best.set(subjectId, similarity);
      }
      return [...best]
        .map(([subjectId, similarity]) => ({ subjectId, similarity }))
        .sort((a, b) => b.similarity - a.similarity)
        .slice(0, limit);
    });
  }

  /** Erases the subject from every pack's collection, so vectors of a previous pack go too. */
  async deleteSubject(kind: SubjectKind, merchantId: string, subjectId: string): Promise<void> {
    for (const collection of await this.everyPackCollection(kind, merchantId)) await collection.delete({ where: { subjectId } });
  }

  async deleteVectors(kind: SubjectKind, merchantId: string, vectorIds: string[]): Promise<void> {
    if (vectorIds.length === 0) return;
    for (const collection of await this.everyPackCollection(kind, merchantId)) await collection.delete({ ids: vectorIds });
  }

  async subjectVectorIds(kind: SubjectKind, merchantId: string, subjectId: string): Promise<string[]> {
    const ids = new Set<string>();
    for (const collection of await this.everyPackCollection(kind, merchantId)) {
      for (const id of (await collection.get({ where: { subjectId }, include: [] as never })).ids) ids.add(id);
    }
    return [...ids].sort();
  }

  async moveVectors(merchantId: string, from: GallerySubject, to: GallerySubject, vectorIds: string[]): Promise<void> {
    if (vectorIds.length === 0) return;
    const sources = await this.everyPackCollection(from.kind, merchantId, true);
    for (const [i, source] of sources.entries()) {
      if (!source) continue;
      const found = await source.get({ ids: vectorIds, where: { subjectId: from.subjectId }, include: ['embeddings'] as never });
      if (found.ids.length === 0) continue;
      const target = from.kind === to.kind ? source : await this.collection(to.kind, merchantId, PACK_NAMES[i]);
      // Copy first, delete after: an outage in between leaves a copy in both, which the next attempt finishes.
      await target.upsert({ ids: found.ids, embeddings: found.embeddings as number[][], metadatas: found.ids.map(() => ({ subjectId: to.subjectId })) });
      if (target !== source) await source.delete({ ids: found.ids });
    }
  }

  /**
   * The merchant's collections of `kind` in every pack that has one (the active pack's is created);
   * with `byPack`, one entry per pack in PACK_NAMES order, null where it has none.
   */
  private async everyPackCollection(kind: SubjectKind, merchantId: string): Promise<Collection[]>;
  private async everyPackCollection(kind: SubjectKind, merchantId: string, byPack: true): Promise<(Collection | null)[]>;
  private async everyPackCollection(kind: SubjectKind, merchantId: string, byPack = false): Promise<(Collection | null)[]> {
    const collections: (Collection | null)[] = [];
    for (const pack of PACK_NAMES) {
      const collection =
        pack === this.pack
          ? await this.collection(kind, merchantId)
          : await this.client
              .getCollection({ name: this.collectionName(kind, merchantId, pack), embeddingFunction: null as never })
              .catch((error) => {
                if (error instanceof ChromaNotFoundError) return null;
                throw error;
              });
      if (collection || byPack) collections.push(collection);
    }
    return collections;
  }

  async countSubjectVectors(kind: SubjectKind, merchantId: string, subjectId: string): Promise<number> {
    const collection = await this.collection(kind, merchantId);
    const result = await collection.get({ where: { subjectId }, include: [] as never });
    return result.ids.length;
  }

  async vectorIds(kind: SubjectKind, merchantId: string): Promise<Set<string>> {
    const collection = await this.collection(kind, merchantId);
    const ids = new Set<string>();
    const page = 1000;
    for (let offset = 0; ; offset += page) {
      const result = await collection.get({ limit: page, offset, include: [] as never });
      for (const id of result.ids) ids.add(id);
      if (result.ids.length < page) return ids;
    }
  }

  async heartbeat(): Promise<void> {
    await this.client.heartbeat();
  }
}
