import { describe, expect, it } from 'vitest';
import { assignExclusive, dropRejected } from '../../src/services/matching.js';
import { deterministicId } from '../../src/queue/contract.js';

describe('assignExclusive', () => {
  it('gives a contested subject to the closer face and the next best subject to the other', () => {
    const assigned = assignExclusive(
      [
        { faceIndex: 0, hits: [{ subjectId: 'a', similarity: 0.7 }, { subjectId: 'b', similarity: 0.6 }] },
        { faceIndex: 1, hits: [{ subjectId: 'a', similarity: 0.9 }] },
      ],
      0.5,
    );
    expect(Object.fromEntries(assigned)).toEqual({
      0: { subjectId: 'b', similarity: 0.6 },
      1: { subjectId: 'a', similarity: 0.9 },
    });
  });

  it('never assigns below the threshold, nor a subject already taken', () => {
    const assigned = assignExclusive(
      [
        { faceIndex: 0, hits: [{ subjectId: 'a', similarity: 0.95 }] },
        { faceIndex: 1, hits: [{ subjectId: 'b', similarity: 0.49 }] },
        { faceIndex: 2, hits: [{ subjectId: 'c', similarity: 0.5 }] },
      ],
      0.5,
      new Set(['a']),
    );
    expect(Object.fromEntries(assigned)).toEqual({ 2: { subjectId: 'c', similarity: 0.5 } });
  });

  it('breaks equal similarities by face order', () => {
    const hits = [{ subjectId: 'a', similarity: 0.8 }];
    const assigned = assignExclusive([{ faceIndex: 1, hits }, { faceIndex: 0, hits }], 0.5);
    expect([...assigned.keys()]).toEqual([0]);
  });
});

describe('deterministicId', () => {
  it('is a stable RFC 4122 shaped id that differs per name', () => {
    const id = deterministicId('visitor:x:0');
    expect(id).toBe(deterministicId('visitor:x:0'));
    expect(id).not.toBe(deterministicId('visitor:x:1'));
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('dropRejected', () => {
  const v = (...values: number[]) => Float32Array.from(values);
  it('drops a hit only when the face is closer to a face rejected for that subject than to the subject itself', () => {
    const face = v(1, 0, 0);
    const candidates = [{ faceIndex: 0, hits: [{ subjectId: 'ada', similarity: 0.6 }, { subjectId: 'bob', similarity: 0.5 }] }];
    const rejected = new Map([
      ['ada', [v(0.9, 0.1, 0)]], // cosine ≈ 0.99 > 0.6: dropped
      ['bob', [v(0, 1, 0)]], // cosine 0 < 0.5: kept
    ]);
    expect(dropRejected(candidates, [face], rejected)).toEqual([{ faceIndex: 0, hits: [{ subjectId: 'bob', similarity: 0.5 }] }]);
    expect(dropRejected(candidates, [face], new Map())).toBe(candidates);
    // A rejection of another pack's dimension is never compared.
    expect(dropRejected(candidates, [face], new Map([['ada', [v(1, 0)]]]))[0].hits).toHaveLength(2);
  });
});
