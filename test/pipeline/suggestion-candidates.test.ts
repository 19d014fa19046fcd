/**
 * Which neighbours of a new visitor the match stage suggests (MatchService on real Chroma and
 * MySQL, with vectors placed at chosen similarities): those in [suggestion, match threshold), never
 * one below the floor nor a subject another face of the same photo was given.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChromaGallery } from '../../src/gallery/chroma-gallery.js';
import { MatchService } from '../../src/services/matching.js';
import { MergeSuggestionRepository } from '../../src/storage/repositories/suggestions.js';
import { VisitorRepository } from '../../src/storage/repositories/visitors.js';
import { createTestEnvironment, type TestEnvironment } from '../support/services.js';

const DIMENSIONS = 512;

let env: TestEnvironment;

beforeAll(async () => {
  env = await createTestEnvironment();
});

afterAll(async () => {
  await env?.cleanup();
});

/** A unit vector at cosine `similarity` to axis 0, the rest along its own `axis` (not 0). */
function at(similarity: number, axis: number): Float32Array {
  const vector = new Float32Array(DIMENSIONS);
  vector[0] = similarity;
  vector[axis] = Math.sqrt(1 - similarity * similarity);
  return vector;
}

describe('suggestion candidates of the match stage', () => {
  it('suggests a new visitor with its neighbours between the floor and the threshold, except one taken in the same photo', async () => {
    const merchantId = randomUUID();
    await env.db('merchants').insert({ id: merchantId, name: 'Candidates Co' });
    const matcher = new MatchService(new ChromaGallery(process.env.CHROMA_URL!, env.config.MODEL_PACK), new VisitorRepository(env.db), new MergeSuggestionRepository(env.db), {
      member: 0.4,
      visitor: 0.42,
      suggestion: 0.3,
    });
    const capture = (...embeddings: Float32Array[]) =>
      matcher.matchCapture({ merchantId, captureId: randomUUID(), capturedAt: new Date('2026-11-20T10:00:00Z'), embeddings });
    const suggested = async () =>
      (await env.db('merge_suggestions').where({ merchant_id: merchantId }).select('visitor_id', 'other_id', 'similarity')).map((row) => ({
        pair: [row.visitor_id, row.other_id].sort(),
        similarity: row.similarity,
      }));

    const [first] = await capture(at(1, 1));
    const [close] = await capture(at(0.36, 2));
    expect(close).toMatchObject({ kind: 'visitor', newVisitor: true });
    expect(await suggested()).toEqual([{ pair: [first.subjectId, close.subjectId].sort(), similarity: expect.closeTo(0.36, 3) }]);

    // Below the floor: a visitor of its own, suggested with nobody.
    await capture(at(0.25, 3));
    expect(await suggested()).toHaveLength(1);

    // The first visitor again beside a face close to it: that face is someone else.
    const [again, beside] = await capture(at(1, 1), at(0.36, 4));
    expect(again).toMatchObject({ subjectId: first.subjectId, newVisitor: false });
    expect(beside.newVisitor).toBe(true);
    expect(await suggested()).toHaveLength(1);
  });
});
