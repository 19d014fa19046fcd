/**
 * Merchant webhooks: each recognition of a member is POSTed as JSON from the webhooks queue with
 * retries, so a slow or failing endpoint never holds up the pipeline. A delivery is signed with the
 * merchant's secret over `<timestamp>.<body>` (`X-FacePerks-Signature: sha256=<hex HMAC-SHA256>`,
 * `X-FacePerks-Timestamp` in unix seconds), so a receiver that checks the timestamp's age refuses
 * replays. An endpoint that keeps failing is paused (a circuit breaker), and the merchant reads
 * why on GET /v1/merchants/:id/webhook.
 */
import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction, BlockList } from 'node:net';
import type { Knex } from 'knex';
import type { FaceMatch, MemberRecognizedEvent } from '../queue/contract.js';
import type { Queues } from '../queue/queues.js';
import { RefusedWebhookTarget, resolveWebhookTarget, type ResolvedTarget } from './webhook-targets.js';

export type WebhookConfig = { merchantId: string; url: string; secret: string };

/** How deliveries to the endpoint have been going (the circuit breaker's state). */
export type WebhookHealth = { consecutiveFailures: number; lastError: string | null; lastErrorAt: Date | null; pausedUntil: Date | null };

export type Webhook = WebhookConfig & WebhookHealth;

/** Consecutive failed deliveries after which the endpoint is paused... */
export const FAILURES_BEFORE_PAUSE = 3;
/** ...for this long, doubled at every further failure, up to PAUSE_MAX_S. */
const PAUSE_BASE_S = 30;
const PAUSE_MAX_S = 3600;

export function signWebhookBody(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export async function setWebhook(db: Knex, merchantId: string, url: string): Promise<WebhookConfig> {
  const secret = `whsec_${randomBytes(24).toString('base64url')}`;
  const freshHealth = { consecutive_failures: 0, last_error: null, last_error_at: null, paused_until: null };
  await db('merchant_webhooks')
    .insert({ merchant_id: merchantId, url, secret })
    .onConflict('merchant_id')
    .merge({ url, secret, ...freshHealth, updated_at: db.raw('CURRENT_TIMESTAMP(3)') });
  return { merchantId, url, secret };
}

export async function findWebhook(db: Knex, merchantId: string): Promise<Webhook | undefined> {
  const row = await db('merchant_webhooks')
    .where({ merchant_id: merchantId })
    .first('url', 'secret', 'consecutive_failures', 'last_error', 'last_error_at', 'paused_until');
  if (!row) return undefined;
  return {
    merchantId,
    url: row.url,
    secret: row.secret,
    consecutiveFailures: row.consecutive_failures,
    lastError: row.last_error,
    lastErrorAt: row.last_error_at,
    pausedUntil: row.paused_until,
  };
}

export async function deleteWebhook(db: Knex, merchantId: string): Promise<boolean> {
  return (await db('merchant_webhooks').where({ merchant_id: merchantId }).delete()) > 0;
}

/**
 * Counts a failed delivery to `url` (ignored if the merchant has set another URL since), pausing
 * the endpoint from the FAILURES_BEFORE_PAUSE-th failure in a row on.
 */
export async function recordDeliveryFailure(db: Knex, webhook: WebhookConfig, message: string): Promise<void> {
  await db('merchant_webhooks')
    .where({ merchant_id: webhook.merchantId, url: webhook.url })
    .update({
      // Listed first: it reads the count before this failure increments it.
      paused_until: db.raw(
        'IF(consecutive_failures + 1 >= ?, DATE_ADD(UTC_TIMESTAMP(3), INTERVAL LEAST(? * POW(2, consecutive_failures + 1 - ?), ?) SECOND), paused_until)',
        [FAILURES_BEFORE_PAUSE, PAUSE_BASE_S, FAILURES_BEFORE_PAUSE, PAUSE_MAX_S],
      ),
      consecutive_failures: db.raw('consecutive_failures + 1'),
      last_error: message.slice(0, 500),
      last_error_at: db.raw('UTC_TIMESTAMP(3)'),
    });
}

export async function recordDeliverySuccess(db: Knex, webhook: WebhookConfig): Promise<void> {
  await db('merchant_webhooks')
    .where({ merchant_id: webhook.merchantId, url: webhook.url })
    .andWhere((q) => q.where('consecutive_failures', '>', 0).orWhereNotNull('paused_until'))
    .update({ consecutive_failures: 0, paused_until: null });
}

/** A failed attempt; the message is about the merchant's endpoint only, fit to show them. */
export class WebhookDeliveryError extends Error {}

export type DeliveryOptions = { allowed: BlockList; timeoutMs: number };

/** POSTs one event; anything but a 2xx within the timeout throws WebhookDeliveryError, so the queue retries it. */
export async function deliverWebhook(webhook: WebhookConfig, event: MemberRecognizedEvent, deliveryId: string, options: DeliveryOptions): Promise<number> {
  const body = JSON.stringify(event);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const headers = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'user-agent': 'FacePerks-Webhook/1',
    'x-faceperks-event': event.type,
    'x-faceperks-delivery': deliveryId,
    'x-faceperks-timestamp': timestamp,
    'x-faceperks-signature': signWebhookBody(webhook.secret, timestamp, body),
  };
  const status = await postOnce(new URL(webhook.url), headers, body, options);
  if (status < 200 || status >= 300) throw new WebhookDeliveryError(`the endpoint answered ${status}`);
  return status;
}

/** Connects only to the address that was checked, whatever the name resolves to by then. */
function pinnedLookup(target: ResolvedTarget): LookupFunction {
  return (_host, options, callback) => {
    if (options.all) (callback as (error: null, addresses: ResolvedTarget[]) => void)(null, [target]);
    else callback(null, target.address, target.family);
  };
}

async function postOnce(url: URL, headers: Record<string, string>, body: string, options: DeliveryOptions): Promise<number> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  const timedOut = () => new WebhookDeliveryError(`no answer within ${options.timeoutMs} ms`);
  let target: ResolvedTarget;
  try {
    target = await Promise.race([
      resolveWebhookTarget(url, options.allowed),
      new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(timedOut()), { once: true })),
    ]);
  } catch (error) {
    if (error instanceof RefusedWebhookTarget) throw new WebhookDeliveryError(`refused: ${error.message}`);
    throw error;
  }
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<number>((resolve, reject) => {
    const request = client.request(url, { method: 'POST', headers, lookup: pinnedLookup(target), agent: false, signal }, (response) => {
      // Only the status matters: the body is never read, whatever its size.
      response.destroy();
      resolve(response.statusCode ?? 0);
    });
    request.on('error', (error: NodeJS.ErrnoException) => {
      reject(signal.aborted ? timedOut() : new WebhookDeliveryError(`connection failed (${error.code ?? 'error'})`));
    });
    request.end(body);
  });
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
