/** Recognition webhooks: signed, delivered from their own queue, retried when the receiver fails. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyWebhookSignature } from '../../src/services/webhooks.js';
import { seedTenant, upload } from '../api/support.js';
import { cropAround, facesIn, fixture, startTestService, waitFor, type TestService } from './support.js';

type Received = { headers: http.IncomingHttpHeaders; body: string; answered: number };

let t: TestService;
let receiver: http.Server;
let url: string;
const received: Received[] = [];

beforeAll(async () => {
  t = await startTestService();
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      // The first delivery fails, as a receiver being deployed would.
      const answered = received.length === 0 ? 500 : 204;
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), answered });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/faceperks`;
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
    expect(verifyWebhookSignature(secret, accepted.body, accepted.headers['x-faceperks-signature'] as string)).toBe(true);
    expect(verifyWebhookSignature('whsec_wrong', accepted.body, accepted.headers['x-faceperks-signature'] as string)).toBe(false);
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
});
