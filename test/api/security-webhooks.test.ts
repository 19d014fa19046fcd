/**
 * Webhooks cannot be pointed inside the deployment (SSRF): loopback, private, link-local (cloud
 * metadata), multicast and unspecified targets are refused at registration (422) and, for a row
 * that got past it (a name re-pointed after registration: DNS rebinding), at delivery, before any
 * connection is made. This service runs without WEBHOOK_ALLOW_PRIVATE; test/pipeline/webhooks.test.ts
 * delivers to loopback with it.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEBHOOK_QUEUE } from '../../src/queue/contract.js';
import { startWebhookWorker } from '../../workers/webhooks.js';
import { startTestService, waitFor, type TestService } from '../pipeline/support.js';
import { seedTenant } from './support.js';

let t: TestService;
/** A plain TCP listener on loopback that counts the connections it gets. */
let listener: net.Server;
let port: number;
let connections = 0;

beforeAll(async () => {
  t = await startTestService({}, { workers: false });
  t.workers.push(startWebhookWorker(t.context));
  listener = net.createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  port = (listener.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await t?.close();
  await new Promise((resolve) => listener?.close(resolve));
});

describe('webhook targets', () => {
  it('refuses loopback, private, link-local, metadata, multicast and unspecified targets at registration', async () => {
    const tenant = await seedTenant(t, 'SSRF Co');
    const hook = `/v1/merchants/${tenant.merchantId}/webhook`;
    const refused = [
      `http://127.0.0.1:${port}/hooks`,
      `http://localhost:${port}/hooks`,
      `http://[::1]:${port}/hooks`,
      'http://[::ffff:127.0.0.1]/hooks',
      'http://2130706433/hooks',
      'http://127.1/hooks',
      'http://169.254.169.254/latest/meta-data/',
      'http://10.1.2.3/hooks',
      'http://172.16.0.1/hooks',
      'http://192.168.1.1/hooks',
      'http://100.100.100.200/hooks',
      'https://[fd00:ec2::254]/hooks',
      'http://[fe80::1]/hooks',
      'http://224.0.0.1/hooks',
      'http://0.0.0.0:6379/',
      'http://[::]/hooks',
      'http://no-such-host.invalid/hooks',
    ];
    for (const url of refused) {
      const r = await t.call('PUT', hook, { key: tenant.merchantKey, json: { url } });
      expect([r.status, r.body.error?.code], url).toEqual([422, 'webhook_target_refused']);
    }
    expect((await t.call('GET', hook, { key: tenant.merchantKey })).status).toBe(404);

    // A public address is fine (an IP literal: nothing to resolve, nothing sent at registration).
    const ok = await t.call('PUT', hook, { key: tenant.merchantKey, json: { url: 'https://93.184.215.14/hooks' } });
    expect(ok.status).toBe(200);
    expect(connections).toBe(0);
  });

  it('refuses them again at delivery, before connecting, and tells the merchant why', async () => {
    const targets = [`http://127.0.0.1:${port}/hooks`, `http://localhost:${port}/hooks`];
    for (const url of targets) {
      const tenant = await seedTenant(t, `Rebind ${url}`);
      // As if the name had resolved to a public address at registration.
      await t.env.db('merchant_webhooks').insert({ merchant_id: tenant.merchantId, url, secret: 'whsec_test' });
      const [job] = await t.queues.enqueueMany('member.recognized', [
        {
          type: 'member.recognized',
          merchantId: tenant.merchantId,
          storeId: tenant.storeId,
          personId: randomUUID(),
          captureId: randomUUID(),
          faceIndex: 0,
          similarity: 0.9,
          capturedAt: new Date().toISOString(),
          run: 0,
        },
      ]);
      const attempted = await waitFor(
        async () => {
          const current = await t.queues.queue(WEBHOOK_QUEUE).getJob(job.id!);
          return current && current.attemptsMade > 0 ? current : undefined;
        },
        30_000,
        `a delivery attempt to ${url}`,
      );
      expect(attempted.failedReason).toMatch(/^refused: .* is a loopback address/);
      const status = await t.call('GET', `/v1/merchants/${tenant.merchantId}/webhook`, { key: tenant.merchantKey });
      expect(status.body.delivery).toMatchObject({ consecutiveFailures: 1, lastError: attempted.failedReason });
    }
    expect(connections).toBe(0);
  });
});
