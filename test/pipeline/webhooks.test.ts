/**
 * Recognition webhooks: signed, delivered from their own queue, retried when the receiver fails, and
 * no longer delivered once removed. The signature is checked against the README's recipe computed
 * here with node:crypto (`X-FacePerks-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, the
 * secret as the key), not with the service's own signer.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEBHOOK_QUEUE } from '../../src/queue/contract.js';
import { verifyWebhookSignature } from '../../src/services/webhooks.js';
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

beforeAll(async () => {
  t = await startTestService();
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
    expect((await t.call('GET', `/v1/merchants/${a.merchantId}/webhook`, { key: a.merchantKey })).body).toEqual({ url, events: ['member.recognized'] });
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
    const signature = accepted.headers['x-faceperks-signature'];
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(signature).toBe(`sha256=${createHmac('sha256', secret).update(accepted.raw).digest('hex')}`);
    expect(failed.headers['x-faceperks-signature']).toBe(signature);
    expect(accepted.headers['content-type']).toMatch(/^application\/json/);
    // The helper the service offers receivers agrees, and refuses another secret.
    expect(verifyWebhookSignature(secret, accepted.body, signature as string)).toBe(true);
    expect(verifyWebhookSignature('whsec_wrong', accepted.body, signature as string)).toBe(false);
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
});
