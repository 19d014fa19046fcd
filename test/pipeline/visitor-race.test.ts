/**
 * Race-free visitor creation (issue 18): the same new face in two captures matched at the same
 * moment by two match workers (two MatchService instances with their own repositories, as two
 * processes have) ends as one visitor, on real Chroma and real MySQL.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChromaGallery } from '../../src/gallery/chroma-gallery.js';
import type { Gallery } from '../../src/gallery/gallery.js';
import { newVisitorIdOf } from '../../src/queue/contract.js';
import { MatchService } from '../../src/services/matching.js';
import { MergeSuggestionRepository } from '../../src/storage/repositories/suggestions.js';
import { VisitorRepository } from '../../src/storage/repositories/visitors.js';
import { createTestEnvironment, type TestEnvironment } from '../support/services.js';

let env: TestEnvironment;

beforeAll(async () => {
  env = await createTestEnvironment();
});

afterAll(async () => {
  await env?.cleanup();
});

function randomUnit(dimensions: number): Float32Array {
  const values = Float32Array.from({ length: dimensions }, () => Math.random() - 0.5);
  const norm = Math.hypot(...values);
  return values.map((v) => v / norm);
}

/** Resolves once `parties` callers have arrived, so both workers leave their first search together. */
function barrier(parties: number) {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return () => {
    arrived += 1;
    if (arrived >= parties) open();
    return opened;
  };
}

/**
 * The real gallery, whose first visitor search of each worker returns only once the other worker's
 * has too: both have then seen no visitor for the face before either could create one.
 */
function gallerySynchronisedBy(real: ChromaGallery, arrive: () => Promise<void>): Gallery {
  let firstVisitorSearch = true;
  return new Proxy(real, {
    get(target, property, receiver) {
      if (property === 'search') {
        return async (...args: Parameters<ChromaGallery['search']>) => {
          const hits = await target.search(...args);
          if (args[0] === 'visitor' && firstVisitorSearch) {
            firstVisitorSearch = false;
            await arrive();
          }
          return hits;
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('two match workers meeting one new face', () => {
  it('create one visitor between them, the second worker matching the first one’s', async () => {
    const merchantId = randomUUID();
    await env.db('merchants').insert({ id: merchantId, name: 'Race Co' });
    const chroma = new ChromaGallery(process.env.CHROMA_URL!, env.config.MODEL_PACK);
    const face = randomUnit(512);
    const arrive = barrier(2);
    const thresholds = { member: env.config.MEMBER_THRESHOLD, visitor: env.config.VISITOR_THRESHOLD, suggestion: env.config.SUGGESTION_THRESHOLD };
    const workers = [0, 1].map(
      () => new MatchService(gallerySynchronisedBy(chroma, arrive), new VisitorRepository(env.db), new MergeSuggestionRepository(env.db), thresholds),
    );
    const captures = [randomUUID(), randomUUID()];
    const capturedAt = new Date('2026-11-20T10:00:00Z');

    const [first, second] = await Promise.all(
      workers.map((worker, i) => worker.matchCapture({ merchantId, captureId: captures[i], capturedAt, embeddings: [Float32Array.from(face)] })),
    );

    const visitors = await env.db('visitors').where({ merchant_id: merchantId }).select('id');
    expect(visitors).toHaveLength(1);
    const visitorId = visitors[0].id as string;
    expect(captures.map((captureId) => newVisitorIdOf(captureId, 0))).toContain(visitorId);
    expect([first[0].subjectId, second[0].subjectId]).toEqual([visitorId, visitorId]);
    expect([first[0].kind, second[0].kind]).toEqual(['visitor', 'visitor']);
    // Exactly one of the two created it; the other matched it.
    expect([first[0].newVisitor, second[0].newVisitor].sort()).toEqual([false, true]);
    expect(await chroma.vectorIds('visitor', merchantId)).toEqual(new Set([visitorId]));
  });
});
