import { randomUUID } from 'node:crypto';
import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES, INTERACTIVE_QUEUE, type InteractiveResult } from '../../src/queue/contract.js';
import { redisConnection } from '../../src/queue/queues.js';
import { makeImage, seedTenant, startTestApi, upload, type TestApi } from './support.js';

const erased: { kind: string; merchantId: string; subjectId: string }[] = [];
let galleryDown = false;
const gallery = {
  async deleteSubject(kind: 'member' | 'visitor', merchantId: string, subjectId: string) {
    if (galleryDown) throw new Error('chroma is down');
    erased.push({ kind, merchantId, subjectId });
  },
  async deleteVectors() {
    throw new Error('no face is removed in these tests');
  },
  async subjectVectorIds(): Promise<string[]> {
    throw new Error('no vector is moved in these tests');
  },
  async moveVectors() {
    throw new Error('no vector is moved in these tests');
  },
  async search(): Promise<never> {
    throw new Error('no face is rejected in these tests');
  },
  async upsert() {
    throw new Error('no face is rejected in these tests');
  },
};

let t: TestApi;
let tenant: Awaited<ReturnType<typeof seedTenant>>;
let unready = false;

beforeAll(async () => {
  t = await startTestApi({
    deps: {
      gallery,
      interactiveTimeoutMs: 1500,
      readiness: [
        { name: 'mysql', check: async () => undefined },
        { name: 'chroma', check: async () => { if (unready) throw new Error('connection refused'); } },
      ],
    },
  });
  tenant = await seedTenant(t, 'Service');
});
afterAll(async () => {
  await t?.close();
});

describe('health, readiness, metrics, openapi', () => {
  it('healthz answers ok; readyz reports each check and 503 when one fails', async () => {
    expect(await t.call('GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await t.call('GET', '/readyz')).toMatchObject({ status: 200, body: { status: 'ready', checks: { mysql: 'ok', chroma: 'ok' } } });
    unready = true;
    const r = await t.call('GET', '/readyz');
    const asAdmin = await t.call('GET', '/readyz', { key: t.adminKey });
    unready = false;
    expect(r.status).toBe(503);
    // Anyone sees which check fails; only the admin key sees why.
    expect(r.body).toMatchObject({ status: 'unready', checks: { mysql: 'ok', chroma: 'fail' }, error: { code: 'not_ready' } });
    expect(JSON.stringify(r.body)).not.toContain('connection refused');
    expect(asAdmin.body).toMatchObject({ status: 'unready', checks: { mysql: 'ok', chroma: 'connection refused' } });
  });

  it('the default readiness checks name MySQL, Redis, Chroma and the blob store, not the models the API never runs', async () => {
    const { defaultReadinessChecks, runReadinessChecks } = await import('../../src/api/readiness.js');
    const config = { ...t.env.config, chromaUrl: 'http://127.0.0.1:1', modelsDir: '/nonexistent' };
    const result = await runReadinessChecks(defaultReadinessChecks({ config, db: t.env.db, queues: t.queues, blobs: t.blobs }));
    expect(Object.keys(result.checks)).toEqual(['mysql', 'redis', 'chroma', 'blobs']);
    expect(result.checks.mysql).toBe('ok');
    expect(result.checks.redis).toBe('ok');
    expect(result.checks.blobs).toBe('ok');
    expect(result.checks.chroma).not.toBe('ok');
    expect(result.ready).toBe(false);
  });

  it('serves Prometheus metrics with request durations by route template', async () => {
    await t.call('GET', `/v1/captures/${randomUUID()}`, { key: tenant.merchantKey });
    const r = await fetch(`${t.url}/metrics`);
    expect(r.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await r.text();
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toMatch(/faceperks_http_request_duration_seconds_count\{method="GET",route="\/v1\/captures\/:id",status="404"\} \d+/);
    expect(text).toMatch(/faceperks_queue_jobs\{queue="vision",state="waiting"\} \d+/);

    // Worker processes publish their registries to Redis; /metrics appends their sum.
    const { Registry, Counter } = await import('prom-client');
    const { publishRegistry } = await import('../../src/metrics/published-registry.js');
    const workerRegistry = new Registry();
    new Counter({ name: 'faceperks_test_worker_total', help: 'test', registers: [workerRegistry] }).inc(3);
    const stop = publishRegistry(t.queues.connection, t.env.config.QUEUE_PREFIX, 'test', workerRegistry, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    stop();
    const withWorkers = await (await fetch(`${t.url}/metrics`)).text();
    expect(withWorkers).toMatch(/faceperks_test_worker_total 3/);
  });

  it('serves an OpenAPI 3.1 document covering every route', async () => {
    const r = await t.call('GET', '/v1/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body.openapi).toBe('3.1.0');
    const paths = Object.keys(r.body.paths);
    for (const p of [
      '/v1/merchants', '/v1/merchants/{id}/keys', '/v1/stores', '/v1/stores/{id}/devices', '/v1/people', '/v1/people/{id}',
      '/v1/people/{id}/faces', '/v1/captures', '/v1/captures/{id}', '/v1/batches/{id}', '/v1/identify', '/healthz', '/readyz', '/metrics',
      '/v1/stores/{id}/analytics/traffic', '/v1/merchants/{id}/analytics/summary',
    ]) {
      expect(paths, p).toContain(p);
    }
    // Every route the app serves is documented.
    const { createApp } = await import('../../src/api/app.js');
    const app = createApp({ config: t.env.config, db: t.env.db, blobs: t.blobs, queues: t.queues });
    const served: string[] = [];
    for (const mw of app.middleware as unknown as { router?: { stack: { path: string; methods: string[] }[] } }[]) {
      for (const layer of mw.router?.stack ?? []) {
        if (layer.path.startsWith('/dashboard')) continue;
        for (const method of layer.methods.filter((m) => m !== 'HEAD')) served.push(`${method.toLowerCase()} ${layer.path.replace(/:(\w+)/g, '{$1}')}`);
      }
    }
    expect(served.length).toBeGreaterThan(20);
    for (const route of served) {
      const [method, p] = route.split(' ');
      expect(r.body.paths[p]?.[method], route).toBeDefined();
    }
    // Every operation documents its error answers with the shared schema.
    for (const [p, item] of Object.entries(r.body.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>)) {
      for (const [method, op] of Object.entries(item)) {
        expect(Object.keys(op.responses).length, `${method} ${p}`).toBeGreaterThan(0);
      }
    }
  });
});

describe('Bull Board', () => {
  it('asks a browser to log in, accepts the admin key as Basic password or Bearer, refuses others', async () => {
    let r = await fetch(`${t.url}/admin/queues`);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Basic realm="FacePerks"/);
    expect((await r.json()).error.code).toBe('unauthorized');

    const basic = (password: string) => `Basic ${Buffer.from(`anyone:${password}`).toString('base64')}`;
    r = await fetch(`${t.url}/admin/queues`, { headers: { authorization: basic('wrong') } });
    expect(r.status).toBe(401);
    r = await fetch(`${t.url}/admin/queues`, { headers: { authorization: basic(tenant.merchantKey) } });
    expect(r.status).toBe(403);
    r = await fetch(`${t.url}/admin/queues`, { headers: { authorization: `Bearer ${tenant.deviceKey}` } });
    expect(r.status).toBe(403);

    r = await fetch(`${t.url}/admin/queues`, { headers: { authorization: basic(t.adminKey) } });
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('<html');

    r = await fetch(`${t.url}/admin/queues/api/queues?activeQueue=vision&page=1&jobsPerPage=10`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(r.status).toBe(200);
    const listing = await r.json();
    r = await fetch(`${t.url}/admin/queues/static/nope.js`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(r.status).toBe(404);
    expect((await r.json()).error.code).toBe('not_found');
    const names = (listing.queues as { name: string }[]).map((q) => q.name).sort();
    expect(names).toEqual([...QUEUE_NAMES].sort());
  });
});

describe('people', () => {
  it('erases a member: gallery vectors, rows, enrolment images; sightings keep anonymous counts', async () => {
    const person = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Erin', externalId: 'erin' } });
    const personId = person.body.id;
    const faceId = randomUUID();
    const blobKey = `people/${personId}/ab/${'a'.repeat(64)}`;
    await t.blobs.put(blobKey, await makeImage());
    await t.env.db('person_faces').insert({ id: faceId, person_id: personId, blob_key: blobKey, pack: 'default', face: JSON.stringify({ score: 0.9 }) });
    const up = await upload(t, tenant.deviceKey, [{ name: 'images', file: await makeImage() }]);
    const captureId = up.body.captures[0].id;
    const faceRowId = randomUUID();
    await t.env.db('faces').insert({
      id: faceRowId, capture_id: captureId, face_index: 0, box_x: 1, box_y: 1, box_width: 10, box_height: 10,
      landmarks: '[[1,1],[2,1],[1.5,2],[1,3],[2,3]]', score: 0.9, match_kind: 'member', person_id: personId, similarity: 0.8,
    });
    await t.env.db('sightings').insert({
      face_id: faceRowId, capture_id: captureId, store_id: tenant.storeId, merchant_id: tenant.merchantId,
      subject_kind: 'member', subject_id: personId, person_id: personId, seen_at: new Date(),
    });
    const got = await t.call('GET', `/v1/people/${personId}`, { key: tenant.merchantKey });
    expect(got.body).toMatchObject({ id: personId, faces: [{ id: faceId, pack: 'default' }], points: 0, lastSeenAt: null });

    galleryDown = true;
    let r = await t.call('DELETE', `/v1/people/${personId}`, { key: tenant.merchantKey });
    galleryDown = false;
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('gallery_unavailable');
    expect(await t.env.db('people').where('id', personId).first()).toBeDefined();

    r = await t.call('DELETE', `/v1/people/${personId}`, { key: tenant.merchantKey });
    expect(r.status).toBe(204);
    expect(erased).toContainEqual({ kind: 'member', merchantId: tenant.merchantId, subjectId: personId });
    expect(await t.env.db('people').where('id', personId).first()).toBeUndefined();
    expect(await t.env.db('person_faces').where('person_id', personId).first()).toBeUndefined();
    expect(await t.blobs.exists(blobKey)).toBe(false);
    expect(await t.env.db('sightings').where('face_id', faceRowId).first()).toMatchObject({ person_id: null, subject_kind: 'member' });
    expect(await t.env.db('faces').where('id', faceRowId).first()).toMatchObject({ person_id: null });
    expect((await t.call('GET', `/v1/people/${personId}`, { key: tenant.merchantKey })).status).toBe(404);
    expect((await t.call('DELETE', `/v1/people/${personId}`, { key: tenant.merchantKey })).status).toBe(404);
  });

  it('without a gallery, erasure answers 503 and deletes nothing', async () => {
    const { createApp } = await import('../../src/api/app.js');
    const app = createApp({ config: t.env.config, db: t.env.db, blobs: t.blobs, queues: t.queues });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const person = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Kept' } });
      const port = (server.address() as { port: number }).port;
      const r = await fetch(`http://127.0.0.1:${port}/v1/people/${person.body.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${tenant.merchantKey}` } });
      expect(r.status).toBe(503);
      expect(await t.env.db('people').where('id', person.body.id).first()).toBeDefined();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('enrol and identify (through a stand-in worker)', () => {
  it('validates the upload before any job is queued', async () => {
    const person = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Val' } });
    const path = `/v1/people/${person.body.id}/faces`;
    let r = await upload(t, tenant.merchantKey, [], path);
    expect(r.status).toBe(400);
    r = await upload(t, tenant.merchantKey, [{ name: 'image', file: Buffer.from('plain text'), type: 'image/jpeg' }], path);
    expect(r).toMatchObject({ status: 415, body: { error: { code: 'unsupported_format' } } });
    r = await upload(t, tenant.merchantKey, [{ name: 'image', file: Buffer.alloc(0) }], path);
    expect(r).toMatchObject({ status: 422, body: { error: { code: 'empty' } } });
    r = await upload(t, tenant.merchantKey, [{ name: 'images', file: await makeImage() }], path);
    expect(r.status).toBe(400);
    r = await upload(t, tenant.merchantKey, [{ name: 'image', file: await makeImage() }, { name: 'image', file: await makeImage() }], path);
    expect(r).toMatchObject({ status: 400, body: { error: { code: 'too_many_files' } } });
    r = await upload(t, tenant.merchantKey, [{ name: 'note', value: 'hello' }, { name: 'image', file: await makeImage() }], path);
    expect(r).toMatchObject({ status: 400, body: { error: { code: 'unexpected_field' } } });
    r = await upload(t, tenant.deviceKey, [{ name: 'image', file: await makeImage() }], path);
    expect(r.status).toBe(403);
    r = await upload(t, tenant.merchantKey, [{ name: 'image', file: await makeImage() }], `/v1/people/${randomUUID()}/faces`);
    expect(r.status).toBe(404);
    r = await upload(t, tenant.deviceKey, [{ name: 'image', file: await makeImage() }], '/v1/identify');
    expect(r.status).toBe(403);
    r = await upload(t, tenant.merchantKey, [{ name: 'image', file: Buffer.from('GIF89a') }], '/v1/identify');
    expect(r.status).toBe(422);
    r = await upload(t, t.adminKey, [{ name: 'image', file: await makeImage() }], '/v1/identify');
    expect(r.status).toBe(400);
    expect(await t.queues.queue(INTERACTIVE_QUEUE).getJobCountByTypes('waiting', 'active', 'completed', 'failed')).toBe(0);
  });

  it('answers 503 when no worker picks the job up in time, and withdraws the job', async () => {
    const person = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Late' } });
    const r = await upload(t, tenant.merchantKey, [{ name: 'image', file: await makeImage() }], `/v1/people/${person.body.id}/faces`);
    expect(r).toMatchObject({ status: 503, body: { error: { code: 'timeout' } } });
    expect(await t.queues.queue(INTERACTIVE_QUEUE).getJobCountByTypes('waiting')).toBe(0);
  });

  it('maps worker answers: 201 enrolled, 422 no_face / multiple_faces, identify matches with names', async () => {
    const ann = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Ann', externalId: 'ann' } });
    const bob = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Bob' } });
    const face = { box: { x: 1, y: 2, width: 30, height: 30 }, score: 0.99, landmarks: [[1, 1], [2, 1], [1.5, 2], [1, 3], [2, 3]] as [number, number][], age: 30, gender: 'female' as const };
    const seen: unknown[] = [];
    const worker = new Worker(
      INTERACTIVE_QUEUE,
      async (job) => {
        seen.push({ name: job.name, data: job.data });
        if (job.name === 'enrol') {
          if (job.data.personId === bob.body.id) return { ok: false, code: 'multiple_faces', message: '2 faces' } satisfies InteractiveResult['enrol'];
          await t.env.db('person_faces').insert({ id: job.data.faceId, person_id: job.data.personId, blob_key: job.data.imageKey, pack: t.env.config.MODEL_PACK, face: JSON.stringify(face) });
          return { ok: true, faceId: job.data.faceId, face } satisfies InteractiveResult['enrol'];
        }
        return {
          ok: true,
          faces: [{ ...face, matches: [{ personId: ann.body.id, similarity: 0.77 }, { personId: randomUUID(), similarity: 0.5 }] }],
        } satisfies InteractiveResult['identify'];
      },
      { connection: redisConnection(t.env.config), prefix: t.env.config.QUEUE_PREFIX },
    );
    try {
      const image = await makeImage();
      let r = await upload(t, tenant.merchantKey, [{ name: 'image', file: image }], `/v1/people/${ann.body.id}/faces`);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body).toMatchObject({ faceId: expect.any(String), face: { score: 0.99 } });
      const enrolJob = seen[0] as { data: { imageKey: string; merchantId: string } };
      expect(enrolJob.data).toMatchObject({ merchantId: tenant.merchantId, imageKey: expect.stringMatching(new RegExp(`^people/${ann.body.id}/`)) });
      expect(await t.blobs.exists(enrolJob.data.imageKey)).toBe(true);

      // The same image again is the same enrolment (a retry after a timeout), not a second face.
      const again = await upload(t, tenant.merchantKey, [{ name: 'image', file: image }], `/v1/people/${ann.body.id}/faces`);
      expect(again).toMatchObject({ status: 200, body: { faceId: r.body.faceId, duplicate: true } });

      r = await upload(t, tenant.merchantKey, [{ name: 'image', file: await makeImage() }], `/v1/people/${bob.body.id}/faces`);
      expect(r).toMatchObject({ status: 422, body: { error: { code: 'multiple_faces' } } });

      r = await upload(t, tenant.merchantKey, [{ name: 'image', file: await makeImage() }], '/v1/identify?limit=2');
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.faces).toEqual([
        { ...face, matches: [{ personId: ann.body.id, externalId: 'ann', displayName: 'Ann', similarity: 0.77 }] },
      ]);
      const identifyJob = seen.find((s) => (s as { name: string }).name === 'identify') as { data: { imageKey: string; limit: number } };
      expect(identifyJob.data.limit).toBe(2);
      // Identify images are not kept.
      expect(await t.blobs.exists(identifyJob.data.imageKey)).toBe(false);
    } finally {
      await worker.close();
    }
  });
});
