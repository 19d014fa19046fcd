/**
 * Face crops, opt-in per merchant, through the API with the real pipeline on photos of
 * ../shared/faces: none while off; while on, a 112x112 JPEG per enrolled face, recognised member
 * face and face of a visitor's second visit on, served to the merchant only, and deleted with the
 * face, the member, the purged visitor, or the setting.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faceCropKey } from '../../src/services/face-crops.js';
import { purgeStaleVisitors } from '../../src/services/retention.js';
import { seedTenant, upload } from '../api/support.js';
import { SHARED_DIR } from '../support/services.js';
import { startTestService, waitFor, type TestService } from './support.js';

const photo = (relative: string) => fs.readFile(path.join(SHARED_DIR, 'faces', relative));
const MEMBER = 'vladmandic-human/samples/in/stock-emotions-b-1.jpg';
const STRANGER = 'davidsandberg-facenet/data/images/Anthony_Hopkins_0001.jpg';
const OTHER_STRANGER = 'face_recognition/examples/knn_examples/train/obama/obama.jpg';

let t: TestService;
let a: Awaited<ReturnType<typeof seedTenant>>;
let b: Awaited<ReturnType<typeof seedTenant>>;

beforeAll(async () => {
  t = await startTestService();
  a = await seedTenant(t, 'Crops A');
  b = await seedTenant(t, 'Crops B');
});

afterAll(async () => {
  await t?.close();
});

/** Uploads one photo (from A's device, or another) and answers its single face once the capture is done. */
async function capturedFace(relative: string, capturedAt = new Date().toISOString(), deviceKey = a.deviceKey) {
  const sent = await upload(t, deviceKey, [
    { name: 'capturedAt', value: capturedAt },
    { name: 'images', file: await photo(relative), filename: path.basename(relative) },
  ]);
  expect(sent.status, JSON.stringify(sent.body)).toBe(202);
  const capture = await waitFor(async () => {
    const r = await t.call('GET', `/v1/captures/${sent.body.captures[0].id}`, { key: deviceKey });
    return r.body.status === 'done' || r.body.status === 'failed' ? r.body : undefined;
  }, 90_000, `capture of ${relative}`);
  expect(capture.faces).toHaveLength(1);
  return capture.faces[0] as { id: string; match: { kind: string; personId?: string; visitorId?: string } };
}

async function enrol(personId: string, relative: string): Promise<string> {
  const r = await upload(t, a.merchantKey, [{ name: 'image', file: await photo(relative), filename: path.basename(relative) }], `/v1/people/${personId}/faces`);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.faceId;
}

const crop = (faceId: string, key = a.merchantKey) => fetch(`${t.url}/v1/faces/${faceId}/crop`, { headers: { authorization: `Bearer ${key}` } });
const kept = (faceId: string) => t.blobs.exists(faceCropKey(a.merchantId, faceId));

async function expectCrop(faceId: string): Promise<void> {
  const r = await crop(faceId);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toBe('image/jpeg');
  const meta = await sharp(Buffer.from(await r.arrayBuffer())).metadata();
  expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 112, 112]);
}

describe('face crops', () => {
  let member: string;

  it('keeps none while the setting is off (the default)', async () => {
    expect((await t.call('GET', `/v1/merchants/${a.merchantId}`, { key: a.merchantKey })).body.keepFaceCrops).toBe(false);
    const face = await capturedFace(OTHER_STRANGER);
    expect((await crop(face.id)).status).toBe(404);
    expect(await kept(face.id)).toBe(false);
  }, 120_000);

  it('is set by the merchant or an admin, never by a device or another merchant', async () => {
    const on = { keepFaceCrops: true };
    expect((await t.call('PATCH', `/v1/merchants/${a.merchantId}`, { key: a.deviceKey, json: on })).status).toBe(403);
    expect((await t.call('PATCH', `/v1/merchants/${a.merchantId}`, { key: b.merchantKey, json: on })).status).toBe(404);
    expect((await t.call('PATCH', `/v1/merchants/${a.merchantId}`, { key: a.merchantKey, json: { keepFaceCrops: 'yes' } })).status).toBe(400);
    const r = await t.call('PATCH', `/v1/merchants/${a.merchantId}`, { key: a.merchantKey, json: on });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: a.merchantId, keepFaceCrops: true });
    expect((await t.call('GET', `/v1/merchants/${a.merchantId}`, { key: t.adminKey })).body.keepFaceCrops).toBe(true);
    expect((await t.call('GET', `/v1/merchants/${b.merchantId}`, { key: b.merchantKey })).body.keepFaceCrops).toBe(false);
  });

  it('keeps a 112x112 crop of an enrolled face, served to the merchant and an admin only; removing the face deletes it', async () => {
    member = (await t.call('POST', '/v1/people', { key: a.merchantKey, json: { displayName: 'Model' } })).body.id;
    const faceId = await enrol(member, MEMBER);
    await expectCrop(faceId);
    expect((await crop(faceId, t.adminKey)).status).toBe(200);
    expect((await crop(faceId, b.merchantKey)).status).toBe(404);
    expect((await crop(faceId, a.deviceKey)).status).toBe(403);

    expect((await t.call('DELETE', `/v1/people/${member}/faces/${faceId}`, { key: a.merchantKey })).status).toBe(204);
    expect(await kept(faceId)).toBe(false);
    expect((await crop(faceId)).status).toBe(404);
  }, 120_000);

  it('keeps crops of captured faces; erasing the member deletes its enrolled and recognised faces\' crops', async () => {
    const enrolled = await enrol(member, MEMBER);
    // The enrolment photo, seen by the store's robot.
    const seen = await capturedFace(MEMBER);
    expect(seen.match).toMatchObject({ kind: 'member', personId: member });
    await expectCrop(seen.id);
    expect(await kept(enrolled)).toBe(true);

    expect((await t.call('DELETE', `/v1/people/${member}`, { key: a.merchantKey })).status).toBe(204);
    expect(await kept(enrolled)).toBe(false);
    expect(await kept(seen.id)).toBe(false);
    expect((await crop(seen.id)).status).toBe(404);
  }, 120_000);

  it("keeps a visitor's crops from its second visit on; retention's purge deletes them", async () => {
    const first = await capturedFace(STRANGER, '2026-01-10T10:00:00Z');
    expect(first.match.kind).toBe('visitor');
    expect(await kept(first.id)).toBe(false);
    // The same photo from another robot two hours later: the same visitor's second visit.
    const robot = await t.call('POST', `/v1/stores/${a.storeId}/devices`, { key: a.merchantKey, json: { name: 'robot-2' } });
    const second = await capturedFace(STRANGER, '2026-01-10T12:00:00Z', robot.body.key);
    expect(second.match).toMatchObject({ kind: 'visitor', visitorId: first.match.visitorId });
    await expectCrop(second.id);
    expect((await crop(first.id)).status).toBe(404);

    expect(await purgeStaleVisitors({ db: t.env.db, blobs: t.blobs, gallery: t.gallery }, 90)).toBe(1);
    expect(await kept(second.id)).toBe(false);
  }, 120_000);

  it('turning the setting off deletes every crop kept', async () => {
    const person = await t.call('POST', '/v1/people', { key: a.merchantKey, json: { displayName: 'Model again' } });
    const faceId = await enrol(person.body.id, MEMBER);
    expect(await kept(faceId)).toBe(true);
    const off = await t.call('PATCH', `/v1/merchants/${a.merchantId}`, { key: a.merchantKey, json: { keepFaceCrops: false } });
    expect(off.body.keepFaceCrops).toBe(false);
    expect(await kept(faceId)).toBe(false);
    expect((await crop(faceId)).status).toBe(404);
  }, 120_000);
});
