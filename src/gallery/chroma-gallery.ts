import { ChromaClient, ChromaNotFoundError, type Collection } from 'chromadb';
import { PACK_NAMES } from '../config.js';
import type { Gallery, GalleryHit, SubjectKind } from './gallery.js';

/**
 * Index parameters of new collections. With Chroma's defaults (16 neighbours, ef 100 to build and
 * to search), probes at cosine 0.75 from one of 100,000 random 512-d vectors found it first only
 * 64-72 % of the time; twice the neighbours and build effort found it 96 % of the time, for about
 * 3 ms more per query (`npm run bench:gallery`; README, Benchmarks). They take effect when a
 * collection is created (Chroma 1.0 ignored a later change of ef_search here).
 */
const HNSW = { max_neighbors: 32, ef_construction: 200, ef_search: 100 };

/**
 * Gallery in Chroma. One collection per (pack, kind, merchant): vectors of different packs are
 * never compared, and a merchant's search never touches another merchant's subjects.
 * Cosine space, so similarity = 1 - distance.
 */
export class ChromaGallery implements Gallery {
  private readonly client: ChromaClient;
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
  }

  collectionName(kind: SubjectKind, merchantId: string, pack = this.pack): string {
    return `${pack}-${kind}s-${merchantId}`;
  }

  private collection(kind: SubjectKind, merchantId: string): Promise<Collection> {
    const name = this.collectionName(kind, merchantId);
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

  async upsert(kind: SubjectKind, merchantId: string, subjectId: string, vectorId: string, embedding: Float32Array): Promise<void> {
    const collection = await this.collection(kind, merchantId);
    await collection.upsert({ ids: [vectorId], embeddings: [Array.from(embedding)], metadatas: [{ subjectId }] });
  }

  async search(kind: SubjectKind, merchantId: string, embeddings: Float32Array[], limit: number): Promise<GalleryHit[][]> {
    if (embeddings.length === 0) return [];
    const collection = await this.collection(kind, merchantId);
    const result = await collection.query({
      queryEmbeddings: embeddings.map((embedding) => Array.from(embedding)),
      // Several vectors may belong to one subject: over-fetch, then keep each subject's best.
      nResults: limit * 4,
      include: ['distances', 'metadatas'] as never,
    });
    const rows = result.rows();
    return embeddings.map((_, i) => {
      const best = new Map<string, number>();
      for (const row of rows[i] ?? []) {
        const subjectId = row.metadata?.subjectId;
        if (typeof subjectId !== 'string' || row.distance == null) continue;
        const similarity = 1 - row.distance;
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
      await collection?.delete({ where: { subjectId } });
    }
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
