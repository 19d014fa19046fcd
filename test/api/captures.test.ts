import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineJobId } from '../../src/queue/contract.js';
import { makeImage, seedTenant, startTestApi, upload, type TestApi } from './support.js';

let t: TestApi;
let tenant: Awaited<ReturnType<typeof seedTenant>>;

const LIMITS = {
  MAX_UPLOAD_BYTES: '200000',
  MAX_UPLOAD_FILES: '8',
  MAX_UPLOAD_TOTAL_BYTES: '700000',
  MAX_IMAGE_PIXELS: '1000000',
};

beforeAll(async () => {
  t = await startTestApi({ env: LIMITS, deps: { maxConcurrentUploadsPerDevice: 16 } });
  tenant = await seedTenant(t, 'Intake');
});
afterAll(async () => {
  await t?.close();
});

const vision = () => t.queues.queue('vision');

describe('POST /v1/captures', () => {
  it('accepts good files and rejects bad ones per file, without sinking the batch', async () => {
    const jpeg = await makeImage('jpeg', 96);
    const png = await makeImage('png', 80);
    // Cut in the middle of the scan data: the header reads fine, so intake accepts it and the
    // preprocess stage fails it when decoding.
    const noisy = await makeImage('jpeg', 128, { noise: true });
    const truncatedBody = noisy.subarray(0, Math.floor(noisy.length * 0.6));
    const big = Buffer.concat([await makeImage('jpeg', 64), Buffer.alloc(250_000, 7)]);
    const r = await upload(t, tenant.deviceKey, [
      { name: 'images', file: jpeg, filename: 'a.jpg' },
      { name: 'images', file: Buffer.alloc(0), filename: 'empty.jpg' },
      { name: 'images', file: truncatedBody, filename: 'cut.jpg' },
      { name: 'images', file: jpeg.subarray(0, 12), filename: 'header-cut.jpg' },
      { name: 'images', file: Buffer.from('hello, I am text\n'), filename: 'notes.txt', type: 'text/plain' },
      { name: 'images', file: png, filename: 'really-a-png.jpg', type: 'image/jpeg' },
      { name: 'images', file: big, filename: 'huge.jpg' },
    ]);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body.batchId).toEqual(expect.any(String));
    expect(r.headers.get('location')).toBe(`/v1/batches/${r.body.batchId}`);

    const accepted = r.body.captures as { id: string; sha256: string; status: string; index: number; duplicate: boolean }[];
    expect(accepted.map((c) => c.index)).toEqual([0, 2, 5]);
    for (const c of accepted) {
      expect(c).toMatchObject({ id: expect.any(String), sha256: expect.stringMatching(/^[0-9a-f]{64}$/), status: 'queued', duplicate: false });
    }
    const rejected = r.body.rejected as { index: number; status: number; error: { code: string; message: string } }[];
    expect(rejected.map((x) => [x.index, x.status, x.error.code])).toEqual([
      [1, 422, 'empty'],
      [3, 422, 'truncated'],
      [4, 415, 'unsupported_format'],
      [6, 413, 'too_large'],
    ]);
    for (const x of rejected) expect(x.error.message).toEqual(expect.any(String));

    // The mislabelled PNG is stored as what its bytes are.
    const row = await t.env.db('captures').where('id', accepted[2].id).first();
    expect(row).toMatchObject({ format: 'png', width: 80, height: 80, status: 'queued', captured_at_source: 'receipt' });
    expect(await t.blobs.exists(row.blob_key)).toBe(true);

    // One vision job per new capture, with the deterministic id.
    for (const c of accepted) {
      const job = await vision().getJob(pipelineJobId('vision', { captureId: c.id, run: 0 }));
      expect(job?.data).toEqual({ captureId: c.id, run: 0 });
    }

    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toContain(`faceperks_uploaded_bytes_total ${jpeg.length + truncatedBody.length + png.length}`);

    const batch = await t.call('GET', `/v1/batches/${r.body.batchId}`, { key: tenant.deviceKey });
    expect(batch.status).toBe(200);
    expect(batch.body).toMatchObject({ id: r.body.batchId, status: 'processing', total: 3, done: 0, failed: 0 });
    expect(batch.body.captures.map((c: { id: string }) => c.id)).toEqual(accepted.map((c) => c.id));
  });

  it('answers a file the device already sent with the existing capture, not re-enqueued', async () => {
    const image = await makeImage();
    const first = await upload(t, tenant.deviceKey, [{ name: 'images', file: image }]);
    expect(first.status).toBe(202);
    const id = first.body.captures[0].id;
    await t.env.db('captures').where('id', id).update({ status: 'done', stage: 'aggregate' });
    const jobsBefore = await vision().getJobCountByTypes('waiting', 'active', 'delayed', 'completed', 'failed');

    const other = await makeImage();
    const again = await upload(t, tenant.deviceKey, [
      { name: 'images', file: other },
      { name: 'images', file: image, filename: 'retry.jpg' },
      { name: 'images', file: image, filename: 'twice-in-one.jpg' },
    ]);
    expect(again.status).toBe(202);
    expect(again.body.batchId).not.toBe(first.body.batchId);
    const [fresh, dup, dup2] = again.body.captures;
    expect(dup).toMatchObject({ id, status: 'done', duplicate: true, index: 1 });
    expect(dup2).toMatchObject({ id, status: 'done', duplicate: true, index: 2 });
    expect(fresh.duplicate).toBe(false);
    const jobsAfter = await vision().getJobCountByTypes('waiting', 'active', 'delayed', 'completed', 'failed');
    expect(jobsAfter).toBe(jobsBefore + 1);

    // The later batch lists the duplicate too.
    const batch = await t.call('GET', `/v1/batches/${again.body.batchId}`, { key: tenant.deviceKey });
    expect(batch.body.captures.map((c: { id: string }) => c.id)).toEqual([fresh.id, id]);
    expect(batch.body).toMatchObject({ total: 2, done: 1, status: 'processing' });

    // Another device of the same merchant sending the same bytes gets its own capture.
    const sibling = await t.call('POST', `/v1/stores/${tenant.storeId}/devices`, { key: tenant.merchantKey, json: { name: 'robot-b' } });
    const elsewhere = await upload(t, sibling.body.key, [{ name: 'images', file: image }]);
    expect(elsewhere.body.captures[0].id).not.toBe(id);
    expect(elsewhere.body.captures[0].duplicate).toBe(false);
  });

  it('concurrent uploads of the same file by one device create one capture', async () => {
    const image = await makeImage();
    const results = await Promise.all(Array.from({ length: 6 }, () => upload(t, tenant.deviceKey, [{ name: 'images', file: image }])));
    for (const r of results) expect(r.status).toBe(202);
    const ids = new Set(results.map((r) => r.body.captures[0].id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => !r.body.captures[0].duplicate)).toHaveLength(1);
  });

  it('reports batch status done once every capture is done or failed', async () => {
    const r = await upload(t, tenant.deviceKey, [
      { name: 'images', file: await makeImage() },
      { name: 'images', file: await makeImage() },
    ]);
    const [a, b] = r.body.captures;
    await t.env.db('captures').where('id', a.id).update({ status: 'done' });
    let batch = await t.call('GET', `/v1/batches/${r.body.batchId}`, { key: tenant.merchantKey });
    expect(batch.body).toMatchObject({ status: 'processing', done: 1, failed: 0, total: 2 });
    await t.env.db('captures').where('id', b.id).update({ status: 'failed', error_code: 'truncated', error_message: 'the jpeg data is truncated' });
    batch = await t.call('GET', `/v1/batches/${r.body.batchId}`, { key: tenant.merchantKey });
    expect(batch.body).toMatchObject({ status: 'done', done: 1, failed: 1, total: 2 });
    expect(batch.body.captures[1]).toMatchObject({ id: b.id, status: 'failed', error: { code: 'truncated', message: 'the jpeg data is truncated' } });
    const capture = await t.call('GET', `/v1/captures/${b.id}`, { key: tenant.deviceKey });
    expect(capture.body).toMatchObject({ id: b.id, status: 'failed', error: { code: 'truncated' }, faces: [] });
  });

  it('applies capturedAt: one for all, several in order, else EXIF, else receipt', async () => {
    const at = '2026-11-20T09:30:00Z';
    let r = await upload(t, tenant.deviceKey, [
      { name: 'capturedAt', value: at },
      { name: 'images', file: await makeImage() },
      { name: 'images', file: await makeImage() },
    ]);
    expect(r.status).toBe(202);
    for (const c of r.body.captures) {
      const got = await t.call('GET', `/v1/captures/${c.id}`, { key: tenant.deviceKey });
      expect(got.body).toMatchObject({ capturedAt: '2026-11-20T09:30:00.000Z', capturedAtSource: 'device' });
    }

    r = await upload(t, tenant.deviceKey, [
      { name: 'capturedAt', value: '2026-11-20T10:00:00+01:00' },
      { name: 'capturedAt', value: '2026-11-20T10:00:05.250Z' },
      { name: 'images', file: await makeImage() },
      { name: 'images', file: await makeImage() },
    ]);
    expect(r.status).toBe(202);
    const times = await Promise.all(r.body.captures.map((c: { id: string }) => t.call('GET', `/v1/captures/${c.id}`, { key: tenant.deviceKey })));
    expect(times.map((x) => x.body.capturedAt)).toEqual(['2026-11-20T09:00:00.000Z', '2026-11-20T10:00:05.250Z']);

    // EXIF without an offset is read in the store's zone (Europe/Paris, UTC+1 in November).
    r = await upload(t, tenant.deviceKey, [{ name: 'images', file: await makeImage('jpeg', 64, { exif: '2026:11:19 08:15:00' }) }]);
    let got = await t.call('GET', `/v1/captures/${r.body.captures[0].id}`, { key: tenant.deviceKey });
    expect(got.body).toMatchObject({ capturedAt: '2026-11-19T07:15:00.000Z', capturedAtSource: 'exif' });

    const before = Date.now();
    r = await upload(t, tenant.deviceKey, [{ name: 'images', file: await makeImage() }]);
    got = await t.call('GET', `/v1/captures/${r.body.captures[0].id}`, { key: tenant.deviceKey });
    expect(got.body.capturedAtSource).toBe('receipt');
    expect(Date.parse(got.body.capturedAt)).toBeGreaterThanOrEqual(before - 1000);
  });

  it('refuses bad capturedAt values with 400 and records nothing', async () => {
    const count = async () => (await t.env.db('captures').count({ n: '*' }).first())!.n;
    const before = await count();
    const cases: { parts: Parameters<typeof upload>[2]; says: RegExp }[] = [
      { parts: [{ name: 'capturedAt', value: 'yesterday' }, { name: 'images', file: await makeImage() }], says: /capturedAt\[0\]/ },
      { parts: [{ name: 'capturedAt', value: '2026-11-20T09:30:00' }, { name: 'images', file: await makeImage() }], says: /zone/ },
      { parts: [{ name: 'capturedAt', value: '2026-02-30T09:30:00Z' }, { name: 'images', file: await makeImage() }], says: /capturedAt/ },
      { parts: [{ name: 'capturedAt', value: '1999-01-01T00:00:00Z' }, { name: 'images', file: await makeImage() }], says: /implausible/ },
      {
        parts: [
          { name: 'capturedAt', value: '2026-11-20T09:30:00Z' },
          { name: 'capturedAt', value: '2026-11-20T09:31:00Z' },
          { name: 'images', file: await makeImage() },
          { name: 'images', file: await makeImage() },
          { name: 'images', file: await makeImage() },
        ],
        says: /2 capturedAt values for 3 images/,
      },
      { parts: [{ name: 'images', file: await makeImage() }, { name: 'capturedAt', value: '2026-11-20T09:30:00Z' }], says: /before the images/ },
      { parts: [{ name: 'capturedAt', value: '2026-11-20T09:30:00Z' }], says: /images/ },
      { parts: [{ name: 'photo', file: await makeImage() }], says: /unexpected file field/ },
      { parts: [{ name: 'colour', value: 'blue' }, { name: 'images', file: await makeImage() }], says: /unexpected field/ },
    ];
    for (const c of cases) {
      const r = await upload(t, tenant.deviceKey, c.parts);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.error.message).toMatch(c.says);
    }
    expect(await count()).toBe(before);
  });

  it('enforces request-level limits with 413 and content types with 415', async () => {
    const many = await Promise.all(Array.from({ length: 9 }, () => makeImage()));
    let r = await upload(t, tenant.deviceKey, many.map((file) => ({ name: 'images', file })));
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('too_many_files');

    const filler = (n: number) => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(190_000, n)]);
    r = await upload(t, tenant.deviceKey, [1, 2, 3, 4].map((n) => ({ name: 'images', file: filler(n) })));
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('request_too_large');

    r = await t.call('POST', '/v1/captures', { key: tenant.deviceKey, json: { images: [] } });
    expect(r.status).toBe(415);
    r = await t.call('POST', '/v1/captures', { key: tenant.deviceKey, body: 'x', headers: { 'content-type': 'image/jpeg' } });
    expect(r.status).toBe(415);

    // Pixel bombs are refused from the header: 1200x1200 > MAX_IMAGE_PIXELS (1e6).
    r = await upload(t, tenant.deviceKey, [{ name: 'images', file: await makeImage('png', 1200) }]);
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('too_large');
    expect(r.body.error.rejected).toHaveLength(1);
  });

  it('answers with the refusal status when every file is refused', async () => {
    const r = await upload(t, tenant.deviceKey, [
      { name: 'images', file: Buffer.from('%PDF-1.7 not an image'), filename: 'doc.pdf' },
      { name: 'images', file: Buffer.alloc(0) },
    ]);
    expect(r.status).toBe(415);
    expect(r.body.error.code).toBe('unsupported_format');
    expect(r.body.error.rejected.map((x: { error: { code: string } }) => x.error.code)).toEqual(['unsupported_format', 'empty']);
  });
});

describe('GET /v1/captures/:id', () => {
  it('returns faces from the faces table with box, landmarks and match', async () => {
    const r = await upload(t, tenant.deviceKey, [{ name: 'images', file: await makeImage() }]);
    const captureId = r.body.captures[0].id;
    const person = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Face Owner' } });
    const visitorId = randomUUID();
    await t.env.db('visitors').insert({ id: visitorId, merchant_id: tenant.merchantId, first_seen_at: new Date(), last_seen_at: new Date() });
    const landmarks = [[10, 12], [30, 12], [20, 20], [12, 30], [28, 30]];
    await t.env.db('faces').insert([
      {
        id: randomUUID(), capture_id: captureId, face_index: 0, box_x: 5, box_y: 6, box_width: 30, box_height: 32,
        landmarks: JSON.stringify(landmarks), score: 0.98, age: 31.5, gender: 'female', match_kind: 'member',
        person_id: person.body.id, similarity: 0.71,
      },
      {
        id: randomUUID(), capture_id: captureId, face_index: 1, box_x: 40, box_y: 6, box_width: 20, box_height: 22,
        landmarks: JSON.stringify(landmarks), score: 0.91, age: 40, gender: 'male', match_kind: 'visitor',
        visitor_id: visitorId, similarity: 0.66,
      },
    ]);
    await t.env.db('captures').where('id', captureId).update({ status: 'done', stage: 'aggregate', face_count: 2 });
    const got = await t.call('GET', `/v1/captures/${captureId}`, { key: tenant.merchantKey });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: captureId, status: 'done', capturedAt: expect.any(String) });
    expect(got.body.error).toBeUndefined();
    expect(got.body.faces).toEqual([
      {
        id: expect.any(String), index: 0, box: { x: 5, y: 6, width: 30, height: 32 }, score: expect.closeTo(0.98, 5),
        landmarks, age: 31.5, gender: 'female', match: { kind: 'member', personId: person.body.id, similarity: expect.closeTo(0.71, 5) },
      },
      {
        id: expect.any(String), index: 1, box: { x: 40, y: 6, width: 20, height: 22 }, score: expect.closeTo(0.91, 5),
        landmarks, age: 40, gender: 'male', match: { kind: 'visitor', visitorId, similarity: expect.closeTo(0.66, 5) },
      },
    ]);
  });
});
