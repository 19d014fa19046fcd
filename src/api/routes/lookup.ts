/**
 * POST /v1/captures/lookup: which of these files (by sha256) has this device already sent?
 * Lets a resumed upload skip files the server holds without re-sending their bytes. Answers only
 * for the calling device's own captures (the same scope as its per-device dedupe), so it reveals
 * nothing about other devices or tenants.
 */
import Router from '@koa/router';
import { z } from 'zod';
import type { RouteDeps } from '../app.js';
import { authorize } from '../auth.js';
import { parse } from '../validation.js';

export const LOOKUP_MAX_HASHES = 1000;

const lookupBody = z.strictObject({
  sha256: z
    .array(z.string().regex(/^[0-9a-fA-F]{64}$/, { message: 'must be a hex sha256 (64 characters)' }))
    .max(LOOKUP_MAX_HASHES, { message: `at most ${LOOKUP_MAX_HASHES} hashes per request` }),
});

type KnownRow = { id: string; sha256: string; status: string; error_code: string | null; error_message: string | null };

export function lookupRoutes({ db }: RouteDeps): Router {
  const router = new Router();
  router.post('/v1/captures/lookup', async (ctx) => {
    const device = authorize(ctx, 'device');
    const { sha256 } = parse(lookupBody, ctx.request.body, 'body');
    const wanted = [...new Set(sha256.map((h) => h.toLowerCase()))];
    const rows: KnownRow[] =
      wanted.length === 0
        ? []
        : await db('captures')
            .where('device_id', device.deviceId)
            .whereIn('sha256', wanted)
            .select('id', 'sha256', 'status', 'error_code', 'error_message');
    ctx.body = {
      known: rows.map((r) => ({
        sha256: r.sha256,
        id: r.id,
        status: r.status,
        ...(r.status === 'failed' ? { error: { code: r.error_code ?? 'failed', message: r.error_message ?? '' } } : {}),
      })),
    };
  });
  return router;
}
