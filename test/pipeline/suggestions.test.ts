/**
 * Suggested merges through the API, with the pipeline on photos of ../shared/faces. The match
 * thresholds are raised out of reach, so two photos of one person become two visitors (or a
 * visitor beside the member) that the match stage suggests merging.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { purgeStaleVisitors } from '../../src/services/retention.js';
import { MergeSuggestionRepository } from '../../src/storage/repositories/suggestions.js';
import { seedTenant, upload } from '../api/support.js';
import { SHARED_DIR } from '../support/services.js';
import { startTestService, waitFor, type TestService } from './support.js';

const FACES = path.join(SHARED_DIR, 'faces');
const photo = (relative: string) => fs.readFile(path.join(FACES, relative));
const HOPKINS = ['davidsandberg-facenet/data/images/Anthony_Hopkins_0001.jpg', 'davidsandberg-facenet/data/images/Anthony_Hopkins_0002.jpg'];
const OBAMA = ['face_recognition/examples/knn_examples/train/obama/obama.jpg', 'face_recognition/examples/knn_examples/train/obama/obama2.jpg'];
const MODEL = ['vladmandic-human/samples/in/stock-emotions-b-1.jpg', 'vladmandic-human/samples/in/stock-emotions-b-2.jpg'];

type Suggestion = { id: string; a: { kind: string; id: string }; b: { kind: string; id: string }; similarity: number; storeIds: string[] };

let t: TestService;
let a: Awaited<ReturnType<typeof seedTenant>>;
let b: Awaited<ReturnType<typeof seedTenant>>;

beforeAll(async () => {
  t = await startTestService({ MEMBER_THRESHOLD: '0.99', VISITOR_THRESHOLD: '0.99', SUGGESTION_THRESHOLD: '0.2' });
  a = await seedTenant(t, 'Suggest A');
  b = await seedTenant(t, 'Suggest B');
});

afterAll(async () => {
  await t?.close();
});

/** Uploads one photo and waits for its capture to be done; answers the visitor its face became. */
async function visitorOf(relative: string, capturedAt: string): Promise<string> {
  const sent = await upload(t, a.deviceKey, [
    { name: 'capturedAt', value: capturedAt },
    { name: 'images', file: await photo(relative), filename: path.basename(relative) },
  ]);
  expect(sent.status, JSON.stringify(sent.body)).toBe(202);
  const capture = await waitFor(async () => {
    const r = await t.call('GET', `/v1/captures/${sent.body.captures[0].id}`, { key: a.deviceKey });
    return r.body.status === 'done' || r.body.status === 'failed' ? r.body : undefined;
  }, 90_000, `capture of ${relative}`);
  expect(capture.status).toBe('done');
  expect(capture.faces).toHaveLength(1);
  expect(capture.faces[0].match.kind).toBe('visitor');
  return capture.faces[0].match.visitorId;
}

async function suggestions(query = '', key = a.merchantKey): Promise<Suggestion[]> {
  const r = await t.call('GET', `/v1/visitors/suggestions${query}`, { key });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.items;
}

const pairOf = (s: Suggestion) => [s.a.id, s.b.id].sort().join();
const pair = (x: string, y: string) => [x, y].sort().join();

describe('suggested merges', () => {
  let hopkins: string[];
  let obama: string[];

  beforeAll(async () => {
    const recent = Date.now() - 3600_000;
    hopkins = [await visitorOf(HOPKINS[0], new Date(recent).toISOString()), await visitorOf(HOPKINS[1], new Date(recent + 60_000).toISOString())];
    // Seen long ago: retention purges them below.
    obama = [await visitorOf(OBAMA[0], '2026-01-10T10:00:00Z'), await visitorOf(OBAMA[1], '2026-01-10T11:00:00Z')];
  }, 240_000);

  it('lists two visitors of one person seen at one store, most similar first, paged', async () => {
    const items = await waitFor(async () => {
      const listed = await suggestions('?limit=200');
      return [pair(...(hopkins as [string, string])), pair(...(obama as [string, string]))].every((p) => listed.some((s) => pairOf(s) === p)) && listed;
    }, 30_000, 'both pairs to be suggested');
    const ofHopkins = items.find((s) => pairOf(s) === pair(hopkins[0], hopkins[1]))!;
    expect(ofHopkins).toMatchObject({ a: { kind: 'visitor' }, b: { kind: 'visitor' }, storeIds: [a.storeId] });
    expect(ofHopkins.similarity).toBeGreaterThanOrEqual(0.2);
    expect(ofHopkins.similarity).toBeLessThan(0.99);
    const similarities = items.map((s) => s.similarity);
    expect(similarities).toEqual([...similarities].sort((x, y) => y - x));

    const paged: Suggestion[] = [];
    let cursor: string | null = null;
    do {
      const r = await t.call('GET', `/v1/visitors/suggestions?limit=1${cursor ? `&cursor=${cursor}` : ''}`, { key: a.merchantKey });
      paged.push(...r.body.items);
      cursor = r.body.nextCursor;
    } while (cursor);
    expect(paged).toEqual(items);
  });

  it('filters by store: a pair never seen at the store is not listed there', async () => {
    const other = await t.call('POST', '/v1/stores', { key: a.merchantKey, json: { name: 'Elsewhere', timezone: 'Europe/Paris' } });
    expect(await suggestions(`?storeId=${other.body.id}`)).toEqual([]);
    expect((await suggestions(`?storeId=${a.storeId}`)).map(pairOf)).toContain(pair(hopkins[0], hopkins[1]));
  });

  it('answers another merchant nothing or 404, a device 403, an admin with merchantId', async () => {
    expect(await suggestions('', b.merchantKey)).toEqual([]);
    expect((await t.call('GET', `/v1/visitors/suggestions?merchantId=${a.merchantId}`, { key: b.merchantKey })).status).toBe(404);
    expect((await t.call('GET', `/v1/visitors/suggestions?storeId=${a.storeId}`, { key: b.merchantKey })).status).toBe(404);
    const dismissal = { a: { kind: 'visitor', id: hopkins[0] }, b: { kind: 'visitor', id: hopkins[1] } };
    expect((await t.call('POST', '/v1/visitors/suggestions/dismissals', { key: b.merchantKey, json: dismissal })).status).toBe(404);
    expect((await t.call('GET', '/v1/visitors/suggestions', { key: a.deviceKey })).status).toBe(403);
    expect((await t.call('POST', '/v1/visitors/suggestions/dismissals', { key: a.deviceKey, json: dismissal })).status).toBe(403);
    expect((await suggestions(`?merchantId=${a.merchantId}`, t.adminKey)).map(pairOf)).toContain(pair(hopkins[0], hopkins[1]));
  });

  it('never suggests a dismissed pair again, in either order', async () => {
    const dismissal = { a: { kind: 'visitor', id: hopkins[1] }, b: { kind: 'visitor', id: hopkins[0] } };
    expect((await t.call('POST', '/v1/visitors/suggestions/dismissals', { key: a.merchantKey, json: dismissal })).status).toBe(204);
    expect((await suggestions()).map(pairOf)).not.toContain(pair(hopkins[0], hopkins[1]));
    // As a retried match job would record it again.
    await new MergeSuggestionRepository(t.env.db).recordSuggestions(a.merchantId, [{ visitorId: hopkins[1], other: { kind: 'visitor', id: hopkins[0] }, similarity: 0.5 }]);
    expect((await suggestions()).map(pairOf)).not.toContain(pair(hopkins[0], hopkins[1]));
    expect((await t.call('POST', '/v1/visitors/suggestions/dismissals', { key: a.merchantKey, json: dismissal })).status).toBe(204);
    const unknown = { a: { kind: 'visitor', id: hopkins[0] }, b: { kind: 'member', id: hopkins[1] } };
    expect((await t.call('POST', '/v1/visitors/suggestions/dismissals', { key: a.merchantKey, json: unknown })).status).toBe(404);
  });

  it('drops a pair whose visitor retention purged', async () => {
    expect(await purgeStaleVisitors({ db: t.env.db, blobs: t.blobs, gallery: t.gallery }, 90)).toBe(2);
    const ids = (await suggestions()).flatMap((s) => [s.a.id, s.b.id]);
    expect(ids).not.toContain(obama[0]);
    expect(ids).not.toContain(obama[1]);
    // A match job that found the visitor just before the purge records nothing, and does not fail.
    await new MergeSuggestionRepository(t.env.db).recordSuggestions(a.merchantId, [{ visitorId: obama[0], other: { kind: 'visitor', id: hopkins[0] }, similarity: 0.5 }]);
    expect(await t.env.db('merge_suggestions').whereIn('visitor_id', obama).orWhereIn('other_id', obama).count({ n: '*' }).first()).toEqual({ n: 0 });
  });

  it('suggests a visitor close to a member, and drops the pair when the member is erased', async () => {
    const member = await t.call('POST', '/v1/people', { key: a.merchantKey, json: { displayName: 'Model' } });
    const enrol = await upload(t, a.merchantKey, [{ name: 'image', file: await photo(MODEL[0]), filename: 'model.jpg' }], `/v1/people/${member.body.id}/faces`);
    expect(enrol.status, JSON.stringify(enrol.body)).toBe(201);
    const visitor = await visitorOf(MODEL[1], new Date().toISOString());
    const listed = await waitFor(async () => (await suggestions('?limit=200')).find((s) => s.b.id === member.body.id && s.a.id === visitor), 30_000, 'the member pair');
    expect(listed).toMatchObject({ a: { kind: 'visitor', id: visitor }, b: { kind: 'member', id: member.body.id }, storeIds: [a.storeId] });

    expect((await t.call('DELETE', `/v1/people/${member.body.id}`, { key: a.merchantKey })).status).toBe(204);
    expect((await suggestions('?limit=200')).map((s) => s.b.id)).not.toContain(member.body.id);
  }, 120_000);
});
