/**
 * A merchant's recognition webhook: set (a new signing secret, shown once), read with how its
 * deliveries are going, remove. A URL that points inside the deployment is refused (422).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { allowListOf, RefusedWebhookTarget, resolveWebhookTarget } from '../../services/webhook-targets.js';
import { deleteWebhook, findWebhook, setWebhook } from '../../services/webhooks.js';
import { findMerchant } from '../../storage/repositories/tenants.js';
import type { RouteDeps } from '../app.js';
import { authorize } from '../auth.js';
import { ApiError, notFound } from '../errors.js';
import { idParams, parse } from '../validation.js';

const webhookBody = z.strictObject({
  url: z
    .string()
    .url({ message: 'must be an absolute http(s) URL' })
    .max(2000)
    .refine((url) => /^https?:\/\//i.test(url), { message: 'must be an absolute http(s) URL' }),
});

export function webhookRoutes(router: Router, { db, config }: RouteDeps): void {
  const allowed = allowListOf(config.WEBHOOK_ALLOW_PRIVATE);
  const merchantOf = async (ctx: Context) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { id } = parse(idParams, ctx.params, 'path');
    const merchant = await findMerchant(db, id, principal);
    if (!merchant) throw notFound('merchant');
    return merchant;
  };

  router.put('/v1/merchants/:id/webhook', async (ctx) => {
    const merchant = await merchantOf(ctx);
    const { url } = parse(webhookBody, ctx.request.body, 'body');
    try {
      await resolveWebhookTarget(new URL(url), allowed);
    } catch (error) {
      if (error instanceof RefusedWebhookTarget) throw new ApiError(422, 'webhook_target_refused', error.message);
      throw error;
    }
    const webhook = await setWebhook(db, merchant.id, url);
    ctx.body = { url: webhook.url, secret: webhook.secret, events: ['member.recognized'] };
  });

  router.get('/v1/merchants/:id/webhook', async (ctx) => {
    const merchant = await merchantOf(ctx);
    const webhook = await findWebhook(db, merchant.id);
    if (!webhook) throw notFound('webhook');
    ctx.body = {
      url: webhook.url,
      events: ['member.recognized'],
      delivery: {
        consecutiveFailures: webhook.consecutiveFailures,
        lastError: webhook.lastError,
        lastErrorAt: webhook.lastErrorAt?.toISOString() ?? null,
        // A pause that is over is no pause: the next delivery tries the endpoint again.
        pausedUntil: webhook.pausedUntil && webhook.pausedUntil.getTime() > Date.now() ? webhook.pausedUntil.toISOString() : null,
      },
    };
  });

  router.delete('/v1/merchants/:id/webhook', async (ctx) => {
    const merchant = await merchantOf(ctx);
    if (!(await deleteWebhook(db, merchant.id))) throw notFound('webhook');
    ctx.status = 204;
  });
}
