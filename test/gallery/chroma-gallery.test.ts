import { randomUUID } from 'node:crypto';
import { ChromaClient } from 'chromadb';
import { describe, expect, it } from 'vitest';
import { ChromaGallery } from '../../src/gallery/chroma-gallery.js';
import { ChromaRequestError } from '../../src/gallery/chroma-records.js';

function unit(values: number[]): Float32Array {
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (v) => v / norm);
}

describe('ChromaGallery (real Chroma server)', () => {
  const gallery = new ChromaGallery(process.env.CHROMA_URL!, 'default');

  it('returns each subject once with its best cosine similarity, highest first', async () => {
    const merchant = randomUUID();
    const [alice, bob] = [randomUUID(), randomUUID()];
    await gallery.upsert('member', merchant, alice, randomUUID(), unit([1, 0, 0, 0]));
    await gallery.upsert('member', merchant, alice, randomUUID(), unit([1, 1, 0, 0]));
    await gallery.upsert('member', merchant, bob, randomUUID(), unit([0, 0, 1, 0]));

    const [hits, nearBob] = await gallery.search('member', merchant, [unit([1, 0.1, 0, 0]), unit([0, 0.1, 1, 0])], 5);

    expect(hits.map((hit) => hit.subjectId)).toEqual([alice, bob]);
    expect(hits[0].similarity).toBeCloseTo(1 / Math.hypot(1, 0.1), 5);
    expect(hits[1].similarity).toBeCloseTo(0, 5);
    // Each query embedding of one request gets its own answer.
    expect(nearBob.map((hit) => hit.subjectId)).toEqual([bob, alice]);
    expect(await gallery.search('member', merchant, [], 5)).toEqual([]);
  });

  it('keeps merchants and subject kinds apart', async () => {
    const [merchantA, merchantB] = [randomUUID(), randomUUID()];
    await gallery.upsert('member', merchantA, randomUUID(), randomUUID(), unit([1, 0, 0, 0]));

    expect(await gallery.search('member', merchantB, [unit([1, 0, 0, 0])], 5)).toEqual([[]]);
    expect(await gallery.search('visitor', merchantA, [unit([1, 0, 0, 0])], 5)).toEqual([[]]);
  });

  it('upsert of the same vector id is idempotent and deleteSubject erases every vector', async () => {
    const merchant = randomUUID();
    const subject = randomUUID();
    const vectorId = randomUUID();
    await gallery.upsert('visitor', merchant, subject, vectorId, unit([0, 1, 0, 0]));
    await gallery.upsert('visitor', merchant, subject, vectorId, unit([0, 1, 0, 0]));
    await gallery.upsert('visitor', merchant, subject, randomUUID(), unit([0, 1, 1, 0]));
    expect(await gallery.countSubjectVectors('visitor', merchant, subject)).toBe(2);

    await gallery.deleteSubject('visitor', merchant, subject);

    expect(await gallery.countSubjectVectors('visitor', merchant, subject)).toBe(0);
    expect(await gallery.search('visitor', merchant, [unit([0, 1, 0, 0])], 5)).toEqual([[]]);
  });

  it('erases a subject from the collections of every pack, not only the current one', async () => {
    const merchant = randomUUID();
    const subject = randomUUID();
    const previousPack = new ChromaGallery(process.env.CHROMA_URL!, 'retinaface');
    await previousPack.upsert('member', merchant, subject, randomUUID(), unit([1, 0, 0, 0]));
    await gallery.upsert('member', merchant, subject, randomUUID(), unit([1, 0, 0, 0]));

    await gallery.deleteSubject('member', merchant, subject);

    expect(await previousPack.countSubjectVectors('member', merchant, subject)).toBe(0);
    expect(await gallery.countSubjectVectors('member', merchant, subject)).toBe(0);
  });

  it('deletes vectors by id from every pack, leaving the subject\'s others', async () => {
    const merchant = randomUUID();
    const subject = randomUUID();
    const [removed, kept] = [randomUUID(), randomUUID()];
    const previousPack = new ChromaGallery(process.env.CHROMA_URL!, 'retinaface');
    await previousPack.upsert('member', merchant, subject, removed, unit([1, 0, 0, 0]));
    await gallery.upsert('member', merchant, subject, removed, unit([1, 0, 0, 0]));
    await gallery.upsert('member', merchant, subject, kept, unit([0, 1, 0, 0]));

    await gallery.deleteVectors('member', merchant, [removed]);

    expect(await previousPack.countSubjectVectors('member', merchant, subject)).toBe(0);
    expect(await gallery.vectorIds('member', merchant)).toEqual(new Set([kept]));
  });

  it('moves vectors to another subject within a kind and across kinds, in every pack, idempotently', async () => {
    const merchant = randomUUID();
    const previousPack = new ChromaGallery(process.env.CHROMA_URL!, 'retinaface');
    const [visitor, survivor, member] = [randomUUID(), randomUUID(), randomUUID()];
    const [moved, old] = [randomUUID(), randomUUID()];
    await gallery.upsert('visitor', merchant, visitor, moved, unit([1, 0, 0, 0]));
    await previousPack.upsert('visitor', merchant, visitor, old, unit([0, 1, 0, 0]));
    expect(await gallery.subjectVectorIds('visitor', merchant, visitor)).toEqual([moved, old].sort());

    await gallery.moveVectors(merchant, { kind: 'visitor', subjectId: visitor }, { kind: 'visitor', subjectId: survivor }, [moved, old]);
    expect(await gallery.subjectVectorIds('visitor', merchant, visitor)).toEqual([]);
    expect((await gallery.search('visitor', merchant, [unit([1, 0, 0, 0])], 5))[0].map((h) => h.subjectId)).toEqual([survivor]);

    const toMember = () => gallery.moveVectors(merchant, { kind: 'visitor', subjectId: survivor }, { kind: 'member', subjectId: member }, [moved, old]);
    await toMember();
    await toMember();
    expect(await gallery.subjectVectorIds('visitor', merchant, survivor)).toEqual([]);
    expect(await gallery.subjectVectorIds('member', merchant, member)).toEqual([moved, old].sort());
    expect(await previousPack.countSubjectVectors('member', merchant, member)).toBe(1);
    const [hit] = (await gallery.search('member', merchant, [unit([1, 0, 0, 0])], 5))[0];
    expect(hit).toEqual({ subjectId: member, similarity: expect.closeTo(1, 5) });
  });

  it('answers a collection deleted behind its back with an error once, then creates it again', async () => {
    const merchant = randomUUID();
    await gallery.upsert('visitor', merchant, randomUUID(), randomUUID(), unit([0, 0, 0, 1]));
    const url = new URL(process.env.CHROMA_URL!);
    await new ChromaClient({ host: url.hostname, port: Number(url.port) }).deleteCollection({ name: gallery.collectionName('visitor', merchant) });

    const stale = await gallery.search('visitor', merchant, [unit([0, 0, 0, 1])], 5).catch((error: unknown) => error);
    expect(stale).toBeInstanceOf(ChromaRequestError);
    expect((stale as ChromaRequestError).status).toBe(404);
    expect(await gallery.search('visitor', merchant, [unit([0, 0, 0, 1])], 5)).toEqual([[]]);
  });

  it('reports what Chroma refuses, with its status and message', async () => {
    const merchant = randomUUID();
    await gallery.upsert('member', merchant, randomUUID(), randomUUID(), unit([1, 0, 0, 0]));
    // A query of another dimension than the collection's.
    const refused = await gallery.search('member', merchant, [unit([1, 0, 0])], 5).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ChromaRequestError);
    expect((refused as ChromaRequestError).status).toBeGreaterThanOrEqual(400);
    expect((refused as ChromaRequestError).message).toMatch(/dimension/i);
  });
});
