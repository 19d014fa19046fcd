import { describe, expect, it } from 'vitest';
import { applySightings, sessionise, visitAge, visitGender, ageBucketIndex, type SightingPoint } from '../../src/services/analytics/sessionise.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 5, 10, 0);
const p = (minutes: number, extra: Partial<SightingPoint> = {}): SightingPoint => ({ seenAt: T0 + minutes * MIN, age: null, gender: null, ...extra });
const spans = (vs: { startedAt: number; endedAt: number; sightings: number }[]) =>
  vs.map((v) => [(v.startedAt - T0) / MIN, (v.endedAt - T0) / MIN, v.sightings]);

describe('sessionise', () => {
  it('a gap of exactly the limit starts a new visit; one millisecond less does not', () => {
    expect(spans(sessionise([p(0), p(30)], 30 * MIN))).toEqual([[0, 0, 1], [30, 30, 1]]);
    expect(spans(sessionise([p(0), { ...p(30), seenAt: T0 + 30 * MIN - 1 }], 30 * MIN))).toEqual([[0, 30 - 1 / MIN, 2]]);
    expect(spans(sessionise([p(0), p(29), p(58), p(88)], 30 * MIN))).toEqual([[0, 58, 3], [88, 88, 1]]);
  });

  it('order of arrival does not matter', () => {
    const pts = [p(50), p(0), p(200), p(10), p(229), p(31)];
    const expected = [[0, 50, 4], [200, 229, 2]];
    expect(spans(sessionise(pts, 30 * MIN))).toEqual(expected);
    expect(spans(sessionise([...pts].reverse(), 30 * MIN))).toEqual(expected);
  });

  it('duplicate instants are separate sightings of one visit', () => {
    expect(spans(sessionise([p(5), p(5)], 30 * MIN))).toEqual([[5, 5, 2]]);
  });

  it('age is the mean of sightings with an age; gender the majority, a tie unknown', () => {
    const [v] = sessionise([p(0, { age: 30, gender: 'male' }), p(1, { age: 41.5, gender: 'female' }), p(2, { gender: 'female' })], 30 * MIN);
    expect(visitAge(v)).toBeCloseTo(35.75, 10);
    expect(visitGender(v)).toBe('female');
    const [tie] = sessionise([p(0, { gender: 'male' }), p(1, { gender: 'female' })], 30 * MIN);
    expect(visitGender(tie)).toBeNull();
    expect(visitAge(tie)).toBeNull();
  });

  it('age buckets have inclusive lower edges', () => {
    expect([0, 17.99, 18, 24.9, 25, 34, 35, 45, 55, 64.99, 65, 99].map(ageBucketIndex)).toEqual([0, 0, 1, 1, 2, 2, 3, 4, 5, 5, 6, 6]);
  });
});

describe('applySightings (incremental)', () => {
  const gap = 30 * MIN;
  const visits = (...ranges: [number, number, number][]) =>
    ranges.map(([a, b, n], i) => ({ id: i + 1, ...sessionise([p(a), p(b)], gap)[0], sightings: n, startedAt: T0 + a * MIN, endedAt: T0 + b * MIN }));

  it('a sighting inside a visit only grows its count', () => {
    const c = applySightings(visits([0, 20, 3]), [p(10)], gap);
    expect(c.removed.map((v) => v.id)).toEqual([1]);
    expect(spans(c.added)).toEqual([[0, 20, 4]]);
  });

  it('a late sighting extends a visit backwards and forwards', () => {
    expect(spans(applySightings(visits([60, 80, 2]), [p(31)], gap).added)).toEqual([[31, 80, 3]]);
    expect(spans(applySightings(visits([60, 80, 2]), [p(109)], gap).added)).toEqual([[60, 109, 3]]);
  });

  it('a sighting at exactly the gap from a visit starts its own visit', () => {
    const c = applySightings(visits([60, 80, 2]), [p(110), p(30)], gap);
    expect(c.kept.map((v) => v.id)).toEqual([1]);
    expect(c.removed).toEqual([]);
    expect(spans(c.added)).toEqual([[30, 30, 1], [110, 110, 1]]);
  });

  it('a late sighting bridging two visits merges them', () => {
    const c = applySightings(visits([0, 10, 2], [50, 70, 3], [120, 130, 1]), [p(30)], gap);
    expect(c.removed.map((v) => v.id).sort()).toEqual([1, 2]);
    expect(c.kept.map((v) => v.id)).toEqual([3]);
    expect(spans(c.added)).toEqual([[0, 70, 6]]);
  });

  it('several sightings can chain-merge three visits', () => {
    const c = applySightings(visits([0, 0, 1], [40, 40, 1], [80, 80, 1]), [p(20), p(60)], gap);
    expect(spans(c.added)).toEqual([[0, 80, 5]]);
    expect(c.removed).toHaveLength(3);
  });

  it('matches sessionising everything at once, for random arrival orders', () => {
    let seed = 7;
    const rnd = () => { // mulberry32
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    for (let round = 0; round < 200; round++) {
      const pts = Array.from({ length: 1 + Math.floor(rnd() * 25) }, () => p(Math.floor(rnd() * 600)));
      let state: ReturnType<typeof sessionise> = [];
      for (const point of pts) {
        const c = applySightings(state, [point], gap);
        state = [...c.kept, ...c.added].sort((a, b) => a.startedAt - b.startedAt);
      }
      expect(spans(state)).toEqual(spans(sessionise(pts, gap)));
    }
  });
});
