/**
 * Recognition webhooks: signed, delivered from their own queue, retried when the receiver fails, no
 * longer delivered once removed, and a black-holed endpoint holds up no other merchant. The
 * signature is checked against the README's recipe computed here with node:crypto
 * (`X-FacePerks-Signature: sha256=<hex HMAC-SHA256 of "<X-FacePerks-Timestamp>.<raw body>">`, the
 * secret as the key), not with the service's own signer. The receivers listen on loopback, which
 * the service refuses unless allowed: WEBHOOK_ALLOW_PRIVATE allows it here
 * (test/api/security-webhooks.test.ts checks the refusals).
 */
import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEBHOOK_QUEUE } from '../../src/queue/contract.js';
import { seedTenant, upload } from '../api/support.js';
import { cropAround, facesIn, fixture, startTestService, waitFor, type TestService } from './support.js';

type Received = { headers: http.IncomingHttpHeaders; raw: Buffer; body: string; answered: number };

let t: TestService;
let receiver: http.Server;
let url: string;
let origin: string;
const received: Received[] = [];
/** Deliveries to /hooks/down, a receiver that always answers 500. */
const down: Received[] = [];
/** Deliveries to /hooks/quick, a receiver that always answers 204. */
const quick: Received[] = [];
const WEBHOOK_TIMEOUT_MS = 1500;
const MERCHANT_CONCURRENCY = 2;

beforeAll(async () => {
  t = await startTestService({
    WEBHOOK_ALLOW_PRIVATE: '127.0.0.0/8',
    WEBHOOK_TIMEOUT_MS: String(WEBHOOK_TIMEOUT_MS),
    WEBHOOK_MERCHANT_CONCURRENCY: String(MERCHANT_CONCURRENCY),
  });
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      if (req.url === '/hooks/down') {
        down.push({ headers: req.headers, raw, body: raw.toString('utf8'), answered: 500 });
        res.writeHead(500).end();
        return;
      }
      if (req.url === '/hooks/quick') {
        quick.push({ headers: req.headers, raw, body: raw.toString('utf8'), answered: 204 });
        res.writeHead(204).end();
        return;
      }
      // The first delivery fails, as a receiver being deployed would.
      const answered = received.length === 0 ? 500 : 204;
      received.push({ headers: req.headers, raw, body: raw.toString('utf8'), answered });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  url = `${origin}/hooks/faceperks`;
});

afterAll(async () => {
  await t?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

describe('recognition webhooks', () => {
  it('are set per merchant, validated, and hidden from other merchants', async () => {
    const a = await seedTenant(t, 'Hook A');
    const b = await seedTenant(t, 'Hook B');
    expect((await t.call('PUT', `/v1/merchants/${a.merchantId}/webhook`, { key: a.merchantKey, json: { url: 'ftp://example.com/x' } })).status).toBe(400);
    expect((await t.call('PUT', `/v1/merchants/${a.merchantId}/webhook`, { key: b.merchantKey, json: { url } })).status).toBe(404);
    expect((await t.call('GET', `/v1/merchants/${a.merchantId}/webhook`, { key: a.merchantKey })).status).toBe(404);

    const set = await t.call('PUT', `/v1/merchants/${a.merchantId}/webhook`, { key: a.merchantKey, json: { url } });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ url, secret: expect.stringMatching(/^whsec_/), events: ['member.recognized'] });
    expect((await t.call('GET', `/v1/merchants/${a.merchantId}/webhook`, { key: a.merchantKey })).body).toEqual({
      url,
      events: ['member.recognized'],
      delivery: { consecutiveFailures: 0, lastError: null, lastErrorAt: null, pausedUntil: null },
    });
    expect((await t.call('DELETE', `/v1/merchants/${a.merchantId}/webhook`, { key: a.merchantKey })).status).toBe(204);
    expect((await t.call('GET', `/v1/merchants/${a.merchantId}/webhook`, { key: a.merchantKey })).status).toBe(404);
  });

  it('POSTs a signed member.recognized event, retried until the receiver accepts it', async () => {
    const tenant = await seedTenant(t, 'Hook Co');
    const { secret } = (await t.call('PUT', `/v1/merchants/${tenant.merchantId}/webhook`, { key: tenant.merchantKey, json: { url } })).body;
    const group = await fixture('sample3.jpg');
    const faces = await facesIn(group, t.env.config.modelsDir);
    const personId = (await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Lin' } })).body.id;
    const enrol = await upload(t, tenant.merchantKey, [{ name: 'image', file: await cropAround(group, faces[0], 0.6, 400) }], `/v1/people/${personId}/faces`);
    expect(enrol.status).toBe(201);

    const r = await upload(t, tenant.deviceKey, [{ name: 'capturedAt', value: '2026-11-22T15:30:00Z' }, { name: 'images', file: group }]);
    const captureId = r.body.captures[0].id;
    await waitFor(async () => received.some((delivery) => delivery.answered === 204) || undefined, 60_000, 'a delivery the receiver accepts');

    expect(received.map((delivery) => delivery.answered)).toEqual([500, 204]);
    const [failed, accepted] = received;
    expect(accepted.body).toBe(failed.body);
    expect(accepted.headers['x-faceperks-delivery']).toBe(failed.headers['x-faceperks-delivery']);
    expect(accepted.headers['x-faceperks-event']).toBe('member.recognized');
    // The documented recipe, computed here: a wrong algorithm, key, encoding or header format fails.
    const hmac = (key: string, ...parts: (string | Buffer)[]) => parts.reduce((h, part) => h.update(part), createHmac('sha256', key)).digest('hex');
    for (const delivery of [failed, accepted]) {
      const timestamp = delivery.headers['x-faceperks-timestamp'] as string;
      expect(timestamp).toMatch(/^\d{10}$/);
      // Fresh: a receiver's 5-minute window accepts it.
      expect(Math.abs(Date.now() / 1000 - Number(timestamp))).toBeLessThan(300);
      const signature = delivery.headers['x-faceperks-signature'];
      expect(signature).toBe(`sha256=${hmac(secret, `${timestamp}.`, delivery.raw)}`);
      // The body alone is not what is signed: an old delivery's signature cannot be sent with a new timestamp.
      expect(signature).not.toBe(`sha256=${hmac(secret, delivery.raw)}`);
      expect(signature).not.toBe(`sha256=${hmac('whsec_wrong', `${timestamp}.`, delivery.raw)}`);
    }
    expect(Number(accepted.headers['x-faceperks-timestamp'])).toBeGreaterThanOrEqual(Number(failed.headers['x-faceperks-timestamp']));
    expect(accepted.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(accepted.body)).toMatchObject({
      type: 'member.recognized',
      merchantId: tenant.merchantId,
      storeId: tenant.storeId,
      personId,
      captureId,
      capturedAt: '2026-11-22T15:30:00.000Z',
      similarity: expect.any(Number),
    });
  });

  it('stop once the webhook is removed: a pending retry delivers nothing and a later recognition queues nothing', async () => {
    const tenant = await seedTenant(t, 'Hook Gone');
    const hook = `/v1/merchants/${tenant.merchantId}/webhook`;
    expect((await t.call('PUT', hook, { key: tenant.merchantKey, json: { url: `${origin}/hooks/down` } })).status).toBe(200);
    const group = await fixture('sample3.jpg');
    const faces = await facesIn(group, t.env.config.modelsDir);
    const personId = (await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Noor' } })).body.id;
    const enrol = await upload(t, tenant.merchantKey, [{ name: 'image', file: await cropAround(group, faces[0], 0.6, 400) }], `/v1/people/${personId}/faces`);
    expect(enrol.status).toBe(201);
    const jobOf = async (captureId: string) => (await t.queues.queue(WEBHOOK_QUEUE).getJobs()).find((job) => job.data?.captureId === captureId);

    // A recognition while the webhook is set: delivered, refused by the receiver, waiting to be retried.
    const first = await upload(t, tenant.deviceKey, [{ name: 'capturedAt', value: '2026-11-23T09:00:00Z' }, { name: 'images', file: group }]);
    const firstId: string = first.body.captures[0].id;
    await waitFor(async () => down.some((d) => JSON.parse(d.body).captureId === firstId) || undefined, 60_000, 'a first (refused) delivery');
    expect((await t.call('DELETE', hook, { key: tenant.merchantKey })).status).toBe(204);

    // Its retry finds no webhook and completes without delivering.
    const retried = await waitFor(
      async () => {
        const job = await jobOf(firstId);
        return job && (await job.getState()) === 'completed' ? job : undefined;
      },
      60_000,
      'the pending delivery to finish',
    );
    expect(retried.returnvalue).toEqual({ delivered: false });
    const deliveredBefore = down.length;

    // A recognition after the removal (the photo re-encoded: the same bytes would be the same capture):
    // the capture is done, no event is queued, nothing is POSTed.
    const again = await sharp(group).jpeg({ quality: 90 }).toBuffer();
    const second = await upload(t, tenant.deviceKey, [{ name: 'capturedAt', value: '2026-11-23T11:00:00Z' }, { name: 'images', file: again }]);
    const secondId: string = second.body.captures[0].id;
    expect(secondId).not.toBe(firstId);
    await waitFor(
      async () => {
        const r = await t.call('GET', `/v1/captures/${secondId}`, { key: tenant.merchantKey });
        return r.body.status === 'done' ? r.body : undefined;
      },
      60_000,
      'the second capture to be done',
    );
    const recognised = (await t.call('GET', `/v1/captures/${secondId}`, { key: tenant.merchantKey })).body;
    expect(recognised.faces.some((face: { match?: { personId?: string } }) => face.match?.personId === personId), JSON.stringify(recognised.faces)).toBe(true);
    const pending = async () => Object.values(await t.queues.queue(WEBHOOK_QUEUE).getJobCounts('waiting', 'active', 'delayed', 'prioritized')).reduce((a, b) => a + b, 0);
    await waitFor(async () => (await pending()) === 0 || undefined, 30_000, 'an idle webhooks queue');
    expect(await jobOf(secondId)).toBeUndefined();
    expect(down.length).toBe(deliveredBefore);
    expect(down.every((d) => JSON.parse(d.body).captureId === firstId)).toBe(true);
  }, 180_000);

  // Last in the file: the black-holed merchant's events stay queued (paused) until the end.
  it('a black-holed endpoint takes few delivery slots, holds up no other merchant, and is paused and reported', async () => {
    let requests = 0;
    let open = 0;
    let mostOpenAtOnce = 0;
    // Reads the request and never answers.
    const blackHole = http.createServer((req) => {
      requests += 1;
      open += 1;
      mostOpenAtOnce = Math.max(mostOpenAtOnce, open);
      req.socket.once('close', () => (open -= 1));
      req.resume();
    });
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    try {
      const slow = await seedTenant(t, 'Hook Slow');
      const other = await seedTenant(t, 'Hook Other');
      const slowHook = `/v1/merchants/${slow.merchantId}/webhook`;
      const blackHoleUrl = `http://127.0.0.1:${(blackHole.address() as AddressInfo).port}/hooks`;
      expect((await t.call('PUT', slowHook, { key: slow.merchantKey, json: { url: blackHoleUrl } })).status).toBe(200);
      expect((await t.call('PUT', `/v1/merchants/${other.merchantId}/webhook`, { key: other.merchantKey, json: { url: `${origin}/hooks/quick` } })).status).toBe(200);
      const events = (tenant: { merchantId: string; storeId: string }, count: number) =>
        Array.from({ length: count }, () => ({
          type: 'member.recognized' as const,
          merchantId: tenant.merchantId,
          storeId: tenant.storeId,
          personId: randomUUID(),
          captureId: randomUUID(),
          faceIndex: 0,
          similarity: 0.9,
          capturedAt: new Date().toISOString(),
          run: 0,
        }));
      const deliveredTo = (captureIds: string[]) => captureIds.every((id) => quick.some((d) => JSON.parse(d.body).captureId === id));

      // A backlog for the black hole first, then the other merchant's events behind it in the queue.
      const backlog = await t.queues.enqueueMany('member.recognized', events(slow, 24));
      await waitFor(async () => requests > 0 || undefined, 30_000, 'the black hole to be reached');
      const first = events(other, 4);
      await t.queues.enqueueMany('member.recognized', first);
      await waitFor(async () => deliveredTo(first.map((e) => e.captureId)) || undefined, 30_000, "the other merchant's deliveries");
      // Sharing the slots first come, first served, each of the 24 would have hung first.
      expect(requests).toBeLessThan(12);
      expect(mostOpenAtOnce).toBeLessThanOrEqual(MERCHANT_CONCURRENCY);

      // After 3 timeouts in a row the endpoint is paused, and its merchant is told why.
      const status = await waitFor(
        async () => {
          const r = await t.call('GET', slowHook, { key: slow.merchantKey });
          return r.body.delivery.pausedUntil ? r.body : undefined;
        },
        60_000,
        'the black-holed endpoint to be paused',
      );
      expect(status.delivery.consecutiveFailures).toBeGreaterThanOrEqual(3);
      expect(status.delivery.lastError).toBe(`no answer within ${WEBHOOK_TIMEOUT_MS} ms`);
      expect(Date.parse(status.delivery.pausedUntil)).toBeGreaterThan(Date.now());

      // Paused, its events wait without spending their attempts, and no delivery reaches it.
      await waitFor(
        async () => {
          const states = await Promise.all(backlog.map((job) => t.queues.queue(WEBHOOK_QUEUE).getJobState(job.id!)));
          return states.every((state) => state === 'delayed') || undefined;
        },
        60_000,
        'the paused backlog to wait',
      );
      const requestsWhenPaused = requests;
      const later = events(other, 2);
      await t.queues.enqueueMany('member.recognized', later);
      await waitFor(async () => deliveredTo(later.map((e) => e.captureId)) || undefined, 30_000, "the other merchant's later deliveries");
      expect(requests).toBe(requestsWhenPaused);
      const jobs = await Promise.all(backlog.map((job) => t.queues.queue(WEBHOOK_QUEUE).getJob(job.id!)));
      expect(jobs.every((job) => job && job.attemptsMade <= 2)).toBe(true);

      // A new URL starts afresh.
      expect((await t.call('PUT', slowHook, { key: slow.merchantKey, json: { url: `${origin}/hooks/quick` } })).status).toBe(200);
      expect((await t.call('GET', slowHook, { key: slow.merchantKey })).body.delivery).toEqual({ consecutiveFailures: 0, lastError: null, lastErrorAt: null, pausedUntil: null });
    } finally {
      blackHole.closeAllConnections();
      await new Promise((resolve) => blackHole.close(resolve));
    }
  }, 180_000);
});
