/** A merchant's recognition webhook: set (a new signing secret, shown once), read, remove. */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { deleteWebhook, findWebhook, setWebhook } from '../../services/webhooks.js';
import { findMerchant } from '../../storage/repositories/tenants.js';
import type { RouteDeps } from '../app.js';
import { authorize } from '../auth.js';
import { notFound } from '../errors.js';
import { idParams, parse } from '../validation.js';

const webhookBody = z.strictObject({
  url: z
    .string()
    .url({ message: 'must be an absolute http(s) URL' })
    .max(2000)
    .refine((url) => /^https?:\/\//i.test(url), { message: 'must be an absolute http(s) URL' }),
});

export function webhookRoutes(router: Router, { db }: RouteDeps): void {
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
    const webhook = await setWebhook(db, merchant.id, url);
    ctx.body = { url: webhook.url, secret: webhook.secret, events: ['member.recognized'] };
  });

  router.get('/v1/merchants/:id/webhook', async (ctx) => {
    const merchant = await merchantOf(ctx);
    const webhook = await findWebhook(db, merchant.id);
    if (!webhook) throw notFound('webhook');
    ctx.body = { url: webhook.url, events: ['member.recognized'] };
  });

  router.delete('/v1/merchants/:id/webhook', async (ctx) => {
    const merchant = await merchantOf(ctx);
    if (!(await deleteWebhook(db, merchant.id))) throw notFound('webhook');
    ctx.status = 204;
  });
}
