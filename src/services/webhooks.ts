/**
 * Merchant webhooks: each recognition of a member is POSTed as JSON, signed with the merchant's
 * secret (`X-FacePerks-Signature: sha256=<hex HMAC-SHA256 of the raw body>`), from the webhooks
 * queue with retries, so a slow or failing endpoint never holds up the pipeline.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Knex } from 'knex';
import type { FaceMatch, MemberRecognizedEvent } from '../queue/contract.js';
import type { Queues } from '../queue/queues.js';

export type WebhookConfig = { merchantId: string; url: string; secret: string };

export function signWebhookBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** For receivers (and tests): constant-time check of a signature header. */
export function verifyWebhookSignature(secret: string, body: string, header: string | undefined): boolean {
  const expected = Buffer.from(signWebhookBody(secret, body));
  const given = Buffer.from(header ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export async function setWebhook(db: Knex, merchantId: string, url: string): Promise<WebhookConfig> {
  const secret = `whsec_${randomBytes(24).toString('base64url')}`;
  await db('merchant_webhooks')
    .insert({ merchant_id: merchantId, url, secret })
    .onConflict('merchant_id')
    .merge({ url, secret, updated_at: db.raw('CURRENT_TIMESTAMP(3)') });
  return { merchantId, url, secret };
}

export async function findWebhook(db: Knex, merchantId: string): Promise<WebhookConfig | undefined> {
  const row = await db('merchant_webhooks').where({ merchant_id: merchantId }).first('url', 'secret');
  return row ? { merchantId, url: row.url, secret: row.secret } : undefined;
}

export async function deleteWebhook(db: Knex, merchantId: string): Promise<boolean> {
  return (await db('merchant_webhooks').where({ merchant_id: merchantId }).delete()) > 0;
}

export class WebhookDeliveryError extends Error {}

/** POSTs one event; anything but a 2xx within the timeout throws, so the queue retries it. */
export async function deliverWebhook(webhook: WebhookConfig, event: MemberRecognizedEvent, deliveryId: string, timeoutMs = 5000): Promise<number> {
  const body = JSON.stringify(event);
  const response = await fetch(webhook.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'FacePerks-Webhook/1',
      'x-faceperks-event': event.type,
      'x-faceperks-delivery': deliveryId,
      'x-faceperks-signature': signWebhookBody(webhook.secret, body),
    },
    body,
    redirect: 'manual',
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (response.status < 200 || response.status >= 300) {
    throw new WebhookDeliveryError(`${webhook.url} answered ${response.status}`);
  }
  return response.status;
}

/** Queues one event per recognised member of a capture, when its merchant has a webhook. */
export async function queueRecognitionEvents(
  deps: { db: Knex; queues: Queues },
  capture: { id: string; merchant_id: string; store_id: string; captured_at: Date },
  run: number,
  matches: FaceMatch[],
): Promise<number> {
  const members = matches.filter((match) => match.kind === 'member');
  if (members.length === 0 || !(await findWebhook(deps.db, capture.merchant_id))) return 0;
  await deps.queues.enqueueMany(
    'member.recognized',
    members.map((match) => ({
      type: 'member.recognized' as const,
      merchantId: capture.merchant_id,
      storeId: capture.store_id,
      personId: match.subjectId,
      captureId: capture.id,
      faceIndex: match.faceIndex,
      similarity: match.similarity,
      capturedAt: capture.captured_at.toISOString(),
      run,
    })),
  );
  return members.length;
}
