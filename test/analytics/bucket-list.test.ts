/**
 * The bucket lists' JSON writer (bucket-list.ts) against JSON.stringify of the same bucket
 * objects, for the three real bucket shapes, on rows as odd as a row can get: missing and null
 * metrics, numbers as strings, values that are not numbers, fractions, huge and negative numbers,
 * and labels with every character JSON escapes.
 */
import { describe, expect, it } from 'vitest';
import { answerJson, BucketList, type BucketShape } from '../../src/services/analytics/bucket-list.js';
import { METRICS } from '../../src/services/analytics/rollup.js';
import { DEMOGRAPHICS_BUCKET, TRAFFIC_BUCKET, VISITORS_BUCKET } from '../../src/services/analytics/query.js';

const labels = [
  '2026-11-01T01:00:00.000-04:00',
  '2026-11-01T01:00:00.000-05:00',
  'quote " backslash \\ slash / newline \n return \r tab \t',
  'controls \u0000 \u0001 \u001f \u007f \u2028 \u2029',
  'unicode é 中 😀, a lone surrogate \ud800 and \udfff',
  '',
];
const odd = [0, 7, -3, 0.1 + 0.2, 2 ** 53 + 2, 1e21, -0, null, undefined, '42', '12345678901234567890', 'x', Number.NaN, Infinity];

/** Rows whose every metric takes the odd values in turn (one row left out: a bucket without visits). */
function rows(): (Record<string, unknown> | undefined)[] {
  return labels.map((_, i) =>
    i === 1 ? undefined : Object.fromEntries(METRICS.map((m, k) => [m, odd[(i * METRICS.length + k) % odd.length]])),
  );
}

describe('bucket list JSON', () => {
  const shapes: Record<string, BucketShape<never, object>> = { traffic: TRAFFIC_BUCKET, demographics: DEMOGRAPHICS_BUCKET, visitors: VISITORS_BUCKET };
  for (const [name, shape] of Object.entries(shapes)) {
    it(`${name} buckets: the text JSON.stringify gives for the bucket objects`, () => {
      const list = new BucketList(labels, rows() as never[], shape);
      const text = answerJson({ buckets: list });
      expect(text).toBe(JSON.stringify({ buckets: list.objects() }));
      expect(JSON.stringify({ buckets: list })).toBe(text);
      expect(JSON.parse(text).buckets).toHaveLength(labels.length);
      expect(answerJson({ buckets: new BucketList([], [], shape) })).toBe('{"buckets":[]}');
    });
  }

  it('an answer: members in order, bucket lists among them, left out what JSON.stringify leaves out', () => {
    const buckets = new BucketList(labels, rows() as never[], DEMOGRAPHICS_BUCKET);
    const answer = {
      storeId: 'a "store" \\ é',
      timezone: 'America/New_York',
      missing: undefined,
      method: () => 1,
      none: null,
      when: new Date(0),
      buckets,
      totals: { visits: 1e21, ratio: Number.NaN, list: [1, null, undefined, 'x'] },
      '\n odd key "': -0,
    };
    expect(answerJson(answer)).toBe(JSON.stringify(answer));
    expect(answerJson({})).toBe('{}');
  });
});
