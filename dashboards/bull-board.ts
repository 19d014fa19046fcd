/**
 * Bull Board at /admin/queues over every queue of the contract, for admins only. A browser without
 * credentials gets a Basic login prompt (any user name, the admin key as password); API clients may
 * send `Authorization: Bearer <admin key>` instead. A browser sends cached Basic credentials with
 * requests other sites make it send, so any request but GET/HEAD from another site is refused.
 * Jobs cannot be added or edited here: every queue carries tenant data (or, for reembed, switches
 * every tenant's model pack), and the service alone makes jobs, with validated payloads and
 * deduplicating ids; retry, clean, promote, pause and resume still work.
 */
import { createBullBoard as createBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { KoaAdapter } from '@bull-board/koa';
import type { Context, Middleware, Next } from 'koa';
import { QUEUE_NAMES } from '../src/queue/contract.js';
import type { Queues } from '../src/queue/queues.js';

export type BullBoardOptions = {
  queues: Pick<Queues, 'queue'>;
  /** Mount path, default /admin/queues. */
  basePath?: string;
  /** The role of an active API key, null when the key is unknown or revoked. */
  roleOfKey(key: string): Promise<string | null>;
};

const REALM = 'Basic realm="FacePerks", charset="UTF-8"';

/** Board API routes (below the mount path) that make or change a job's name or data. */
const JOB_WRITES: readonly { method: string; path: RegExp }[] = [
  { method: 'POST', path: /^\/api\/queues\/[^/]+\/add\/?$/ },
  { method: 'PATCH', path: /^\/api\/queues\/[^/]+\/[^/]+\/update-data\/?$/ },
];

/**
 * True for a state-changing request a browser sent on another site's behalf: judged by
 * Sec-Fetch-Site when the browser sends it, else by Origin against the Host it was sent to.
 * Clients that send neither (curl, scripts) are not browsers carrying someone else's credentials.
 */
export function isCrossSiteWrite(ctx: Context): boolean {
  if (ctx.method === 'GET' || ctx.method === 'HEAD') return false;
  const site = ctx.get('sec-fetch-site');
  if (site) return site !== 'same-origin' && site !== 'none';
  const origin = ctx.get('origin');
  if (!origin) return false;
  try {
    return new URL(origin).host !== ctx.host;
  } catch {
    // "null" (sandboxed frames, some redirects) or garbage.
    return true;
  }
}

/** The key presented as a Bearer token or as the password of Basic credentials; null when none. */
export function presentedKey(header: string | undefined): string | null {
  if (!header) return null;
  const bearer = /^Bearer\s+(\S{1,512})\s*$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+([A-Za-z0-9+/=]{1,1400})\s*$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon >= 0 ? decoded.slice(colon + 1) : null;
  }
  return null;
}

function deny(ctx: Context, status: 401 | 403, message: string): void {
  ctx.status = status;
  if (status === 401) ctx.set('WWW-Authenticate', REALM);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error: { code: status === 401 ? 'unauthorized' : 'forbidden', message } };
}

/** Koa middleware serving Bull Board under `basePath`; other paths pass through. */
export function createBullBoard(options: BullBoardOptions): Middleware {
  const basePath = options.basePath ?? '/admin/queues';
  const serverAdapter = new KoaAdapter();
  serverAdapter.setBasePath(basePath);
  createBoard({
    queues: QUEUE_NAMES.map((name) => new BullMQAdapter(options.queues.queue(name))),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'FacePerks queues' } },
  });
  const board = serverAdapter.registerPlugin() as unknown as Middleware;

  return async (ctx: Context, next: Next) => {
    if (ctx.path !== basePath && !ctx.path.startsWith(`${basePath}/`)) return next();
    if (isCrossSiteWrite(ctx)) return deny(ctx, 403, 'Bull Board accepts changes from its own pages only (cross-site request refused)');
    const key = presentedKey(ctx.get('authorization') || undefined);
    if (key === null) return deny(ctx, 401, 'Bull Board needs the admin key (Basic password or Bearer token)');
    let role: string | null;
    try {
      role = await options.roleOfKey(key);
    } catch {
      ctx.status = 503;
      ctx.body = { error: { code: 'unavailable', message: 'cannot check the key right now' } };
      return;
    }
    if (role === null) return deny(ctx, 401, 'unknown or revoked key; Bull Board needs the admin key');
    if (role !== 'admin') return deny(ctx, 403, `Bull Board needs the admin key; this is a ${role} key`);
    ctx.set('Cache-Control', 'no-store');
    const route = ctx.path.slice(basePath.length);
    if (JOB_WRITES.some((write) => write.method === ctx.method && write.path.test(route))) {
      ctx.status = 405;
      ctx.body = { error: { code: 'read_only', message: 'jobs are made by the service only; Bull Board can retry, clean, promote, pause and resume them' } };
      return;
    }
    // Nothing under the board's path belongs to the rest of the app: an unknown path is a 404 here.
    await board(ctx, async () => undefined);
    if (ctx.body === undefined || ctx.body === null) {
      ctx.status = 404;
      ctx.body = { error: { code: 'not_found', message: `no Bull Board resource at ${ctx.path}` } };
    }
  };
}
