/**
 * The service end to end through HTTP: upload bursts, enrolment then recognition, returning
 * visitors, duplicates, bad files, erasure and tenancy, on the real models and services.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACK_NAMES } from '../../src/config.js';
import { ChromaGallery } from '../../src/gallery/chroma-gallery.js';
import { pipelineJobId } from '../../src/queue/contract.js';
import type { Box } from '../../src/vision/types.js';
import { seedTenant, upload, type Part } from '../api/support.js';
import { cropAround, facesIn, fixture, startTestService, waitFor, type TestService } from './support.js';

let t: TestService;
let tenant: Awaited<ReturnType<typeof seedTenant>>;
let group: Buffer;
let groupFaces: Box[];

type CaptureView = {
  id: string;
  status: string;
  error?: { code: string; message: string };
  faces: { box: Box; score: number; landmarks: number[][]; age: number; gender: string; match: { kind: string; personId?: string; visitorId?: string; similarity: number } }[];
};

async function settled(captureId: string, key = tenant.deviceKey): Promise<CaptureView> {
  return waitFor(async () => {
    const r = await t.call('GET', `/v1/captures/${captureId}`, { key });
    return ['done', 'failed'].includes(r.body.status) ? (r.body as CaptureView) : undefined;
  }, 90_000, `capture ${captureId} to settle`);
}

const jpeg = (file: Buffer, filename: string): Part => ({ name: 'images', file, filename });

/** The face of `view` whose box centre lies inside `box` (both in original pixels of the same image). */
function faceAt(view: CaptureView, box: Box, scale = 1) {
  return view.faces.find((face) => {
    const cx = (face.box.x + face.box.width / 2) / scale;
    const cy = (face.box.y + face.box.height / 2) / scale;
    return cx > box.x && cx < box.x + box.width && cy > box.y && cy < box.y + box.height;
  });
}

beforeAll(async () => {
  t = await startTestService();
  tenant = await seedTenant(t, 'Pipeline Co');
  group = await fixture('sample1.jpg');
  groupFaces = await facesIn(group, t.env.config.modelsDir);
});

afterAll(async () => {
  await t?.close();
});

describe('the queued pipeline', () => {
  let memberId: string;
  let firstVisit: CaptureView;

  it('enrols a member from a single-face photo and refuses photos with no face or several', async () => {
    expect(groupFaces.length).toBeGreaterThanOrEqual(3);
    const person = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Ada', externalId: 'card-1' } });
    expect(person.status).toBe(201);
    memberId = person.body.id;

    const portrait = await cropAround(group, groupFaces[0], 0.6, 400);
    const enrol = await upload(t, tenant.merchantKey, [{ name: 'image', file: portrait, filename: 'ada.jpg' }], `/v1/people/${memberId}/faces`);
    expect(enrol.status, JSON.stringify(enrol.body)).toBe(201);
    expect(enrol.body.faceId).toEqual(expect.any(String));
    expect(await t.gallery.countSubjectVectors('member', tenant.merchantId, memberId)).toBe(1);

    const blank = await (await import('sharp')).default({ create: { width: 300, height: 300, channels: 3, background: '#8a8' } }).jpeg().toBuffer();
    const none = await upload(t, tenant.merchantKey, [{ name: 'image', file: blank, filename: 'wall.jpg' }], `/v1/people/${memberId}/faces`);
    expect([none.status, none.body.error?.code]).toEqual([422, 'no_face']);

    const several = await upload(t, tenant.merchantKey, [{ name: 'image', file: group, filename: 'group.jpg' }], `/v1/people/${memberId}/faces`);
    expect([several.status, several.body.error?.code]).toEqual([422, 'multiple_faces']);
  });

  it('processes a burst: the member is recognised, strangers become visitors, bad files fail with their reason', async () => {
    const text = Buffer.from('this is not an image');
    const truncated = group.subarray(0, Math.floor(group.length * 0.5));
    const r = await upload(t, tenant.deviceKey, [
      { name: 'capturedAt', value: '2026-11-20T10:00:00Z' },
      jpeg(group, 'g1.jpg'),
      jpeg(truncated, 'cut.jpg'),
      jpeg(text, 'notes.jpg'),
    ]);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body.rejected.map((x: { error: { code: string } }) => x.error.code)).toEqual(['unsupported_format']);
    const [whole, cut] = r.body.captures as { id: string }[];

    firstVisit = await settled(whole.id);
    expect(firstVisit.status).toBe('done');
    expect(firstVisit.faces.length).toBe(groupFaces.length);
    const member = faceAt(firstVisit, groupFaces[0]);
    expect(member?.match).toMatchObject({ kind: 'member', personId: memberId });
    const others = firstVisit.faces.filter((face) => face !== member);
    for (const face of others) expect(face.match.kind).toBe('visitor');
    expect(new Set(others.map((face) => face.match.visitorId)).size).toBe(others.length);
    for (const face of firstVisit.faces) {
      expect(face.landmarks).toHaveLength(5);
      expect(face.age).toBeGreaterThan(0);
      expect(['male', 'female']).toContain(face.gender);
    }

    const failed = await settled(cut.id);
    expect(failed.status).toBe('failed');
    expect(failed.error?.code).toBe('truncated');

    const batch = await t.call('GET', `/v1/batches/${r.body.batchId}`, { key: tenant.deviceKey });
    expect(batch.body).toMatchObject({ status: 'done', total: 2, done: 1, failed: 1 });

    const person = await t.call('GET', `/v1/people/${memberId}`, { key: tenant.merchantKey });
    expect(person.body.points).toBe(5);
    expect(person.body.lastSeenAt).toBe('2026-11-20T10:00:00.000Z');

    // The recognition is the member's one award, visit and ledger line; the strangers are the store's visitors.
    const ledger = await t.call('GET', `/v1/people/${memberId}/points`, { key: tenant.merchantKey });
    expect(ledger.body).toEqual({
      balance: 5,
      items: [{ id: expect.any(String), kind: 'award', points: 5, at: '2026-11-20T10:00:00.000Z', storeId: tenant.storeId, captureId: whole.id, reason: null }],
      nextCursor: null,
    });
    const visits = await t.call('GET', `/v1/people/${memberId}/visits`, { key: tenant.merchantKey });
    expect(visits.body.items).toEqual([{ storeId: tenant.storeId, startedAt: '2026-11-20T10:00:00.000Z', endedAt: '2026-11-20T10:00:00.000Z', sightings: 1 }]);
    const visitors = await t.call('GET', `/v1/visitors?storeId=${tenant.storeId}`, { key: tenant.merchantKey });
    expect(visitors.body.items.map((v: { id: string }) => v.id).sort()).toEqual(others.map((face) => face.match.visitorId).sort());
  });

  it('ends a capture with no face after the vision stage: done, no faces, no match or aggregate job', async () => {
    const sharp = (await import('sharp')).default;
    const wall = await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 180, g: 170, b: 150 } } }).jpeg().toBuffer();
    const r = await upload(t, tenant.deviceKey, [{ name: 'capturedAt', value: '2026-11-20T11:00:00Z' }, jpeg(wall, 'wall.jpg')]);
    expect(r.status).toBe(202);
    const [capture] = r.body.captures as { id: string }[];
    const view = await settled(capture.id);
    expect(view).toMatchObject({ status: 'done', faces: [] });
    const vision = await t.queues.queue('vision').getJob(pipelineJobId('vision', { captureId: capture.id, run: 0 }));
    expect(await vision?.getState()).toBe('completed');
    for (const queue of ['match', 'aggregate'] as const) {
      expect(await t.queues.queue(queue).getJob(pipelineJobId(queue, { captureId: capture.id, run: 0 }))).toBeUndefined();
    }
  });

  it('recognises the same visitors in a later, re-encoded capture and answers a re-sent file with its capture', async () => {
    const smaller = await (await import('sharp')).default(group).resize({ width: 1400 }).jpeg({ quality: 80 }).toBuffer();
    const r = await upload(t, tenant.deviceKey, [{ name: 'capturedAt', value: '2026-11-20T12:00:00Z' }, jpeg(smaller, 'g2.jpg'), jpeg(group, 'g1-again.jpg')]);
    expect(r.status).toBe(202);
    const [later, again] = r.body.captures as { id: string; duplicate: boolean }[];
    expect(again).toMatchObject({ id: firstVisit.id, duplicate: true });

    const view = await settled(later.id);
    expect(view.status).toBe('done');
    const scale = 1400 / 1920;
    for (const face of firstVisit.faces) {
      const box = { x: face.box.x, y: face.box.y, width: face.box.width, height: face.box.height };
      const same = faceAt(view, box, scale);
      expect(same?.match.kind).toBe(face.match.kind);
      expect(same?.match.personId ?? same?.match.visitorId).toBe(face.match.personId ?? face.match.visitorId);
    }
    // Scores and similarities come back as computed, not rounded to two decimals.
    const values = view.faces.flatMap((f) => [f.score, f.match.similarity]);
    expect(values.filter((v) => Math.abs(v * 100 - Math.round(v * 100)) > 1e-9).length).toBeGreaterThan(values.length / 2);
    const sightings = await t.env.db('sightings').where({ capture_id: firstVisit.id }).count({ n: '*' });
    expect(Number(sightings[0].n)).toBe(firstVisit.faces.length);
  });

  it('hides one merchant’s captures and people from another merchant (404)', async () => {
    const other = await seedTenant(t, 'Other Co');
    const capture = await t.call('GET', `/v1/captures/${firstVisit.id}`, { key: other.merchantKey });
    expect([capture.status, capture.body.error.code]).toEqual([404, 'not_found']);
    const person = await t.call('GET', `/v1/people/${memberId}`, { key: other.merchantKey });
    expect(person.status).toBe(404);
  });

  it('identifies the member synchronously from a new photo', async () => {
    const probe = await cropAround(group, groupFaces[0], 0.9, 300, 70);
    const r = await upload(t, tenant.merchantKey, [{ name: 'image', file: probe, filename: 'probe.jpg' }], '/v1/identify');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.faces[0].matches[0]).toMatchObject({ personId: memberId });
  });

  it('erases a member: vectors in every pack, enrolment images, enrolled faces and links go, anonymous counts stay', async () => {
    // Vectors of the member in every pack's collection (as reembeds to each pack leave them), beside
    // another member's, which stay.
    const other = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Bob' } });
    const galleries = PACK_NAMES.map((pack) => new ChromaGallery(t.env.config.chromaUrl, pack));
    const vector = Float32Array.from({ length: 512 }, (_, i) => (i === 0 ? 1 : 0));
    for (const gallery of galleries) {
      if (gallery.collectionName('member', tenant.merchantId) !== t.gallery.collectionName('member', tenant.merchantId)) {
        await gallery.upsert('member', tenant.merchantId, memberId, `${memberId}-copy`, vector);
      }
      await gallery.upsert('member', tenant.merchantId, other.body.id, `${other.body.id}-v`, vector);
    }
    for (const gallery of galleries) expect(await gallery.countSubjectVectors('member', tenant.merchantId, memberId)).toBeGreaterThan(0);
    const enrolmentImages = (await t.env.db('person_faces').where({ person_id: memberId }).select('blob_key')).map((row) => row.blob_key as string);
    expect(enrolmentImages.length).toBeGreaterThan(0);
    for (const key of enrolmentImages) expect(await t.blobs.exists(key)).toBe(true);
    const facesBefore = await t.env.db('faces').count({ n: '*' });
    expect((await t.env.db('faces').where({ person_id: memberId })).length).toBeGreaterThan(0);

    const sightingsBefore = await t.env.db('sightings').where({ merchant_id: tenant.merchantId }).count({ n: '*' });
    const analytics = async () => {
      const range = 'from=2026-11-01&to=2026-12-01&interval=day';
      const traffic = await t.call('GET', `/v1/stores/${tenant.storeId}/analytics/traffic?${range}`, { key: tenant.merchantKey });
      const visitors = await t.call('GET', `/v1/stores/${tenant.storeId}/analytics/visitors?${range}`, { key: tenant.merchantKey });
      return { traffic: traffic.body.totals, visitors: visitors.body.totals };
    };
    const analyticsBefore = await analytics();
    expect(analyticsBefore.traffic.memberVisits).toBeGreaterThan(0);
    const keyedBySubject = ['sightings', 'visits', 'analytics_subjects', 'analytics_store_subjects'];
    for (const table of keyedBySubject) expect((await t.env.db(table).where({ subject_id: memberId })).length, table).toBeGreaterThan(0);
    const erased = await t.call('DELETE', `/v1/people/${memberId}`, { key: tenant.merchantKey });
    expect(erased.status).toBe(204);
    for (const gallery of galleries) {
      expect(await gallery.countSubjectVectors('member', tenant.merchantId, memberId), gallery.collectionName('member', tenant.merchantId)).toBe(0);
      expect(await gallery.countSubjectVectors('member', tenant.merchantId, other.body.id)).toBe(1);
    }
    for (const key of enrolmentImages) expect(await t.blobs.exists(key), key).toBe(false);
    expect(await t.env.db('faces').where({ person_id: memberId })).toEqual([]);
    expect(await t.env.db('faces').count({ n: '*' })).toEqual(facesBefore);
    expect(await t.env.db('person_faces').where({ person_id: memberId })).toEqual([]);
    expect(await t.env.db('sightings').where({ person_id: memberId })).toEqual([]);
    const sightingsAfter = await t.env.db('sightings').where({ merchant_id: tenant.merchantId }).count({ n: '*' });
    expect(sightingsAfter).toEqual(sightingsBefore);
    // Nothing keeps the person's id (issue 14 item 8), and every count stays.
    for (const table of keyedBySubject) expect(await t.env.db(table).where({ subject_id: memberId }), table).toEqual([]);
    expect(await analytics()).toEqual(analyticsBefore);
    expect((await t.call('GET', `/v1/people/${memberId}`, { key: tenant.merchantKey })).status).toBe(404);
  });
});
