/**
 * The merchant dashboard: static files under /dashboard plus ECharts served from node_modules
 * (no CDN, no build step). The page talks to the analytics API with the merchant key the user
 * signs in with (kept in sessionStorage only).
 * Mount: app.use(merchantDashboard().routes()).
 */
import { createRequire } from 'node:module';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Router from '@koa/router';
import type { Context } from 'koa';

const here = path.dirname(fileURLToPath(import.meta.url));
/** tsc copies no static files: compiled into dist/dashboards/merchant, this module serves the sources' copy. */
const compiled = path.basename(path.resolve(here, '../..')) === 'dist';
const publicDir = compiled ? path.resolve(here, '../../../dashboards/merchant/public') : path.join(here, 'public');
const require = createRequire(import.meta.url);

const FILES: Record<string, { file: () => string; type: string }> = {
  '/dashboard/': { file: () => path.join(publicDir, 'index.html'), type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { file: () => path.join(publicDir, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/dashboard/identity.js': { file: () => path.join(publicDir, 'identity.js'), type: 'text/javascript; charset=utf-8' },
  '/dashboard/style.css': { file: () => path.join(publicDir, 'style.css'), type: 'text/css; charset=utf-8' },
  '/dashboard/vendor/echarts.min.js': {
    file: () => path.join(path.dirname(require.resolve('echarts/package.json')), 'dist', 'echarts.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
};

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'", // ECharts positions its tooltip with inline styles
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

export function merchantDashboard(): Router {
  const router = new Router();
  const cache = new Map<string, Buffer>();
  const serve = async (ctx: Context, route: string) => {
    const entry = FILES[route];
    let body = cache.get(route);
    if (!body) {
      body = await fs.readFile(entry.file());
      if (process.env.NODE_ENV === 'production') cache.set(route, body);
    }
    ctx.type = entry.type;
    ctx.set('Content-Security-Policy', CSP);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Cache-Control', route.includes('/vendor/') ? 'public, max-age=86400' : 'no-cache');
    ctx.body = body;
  };
  // The page uses absolute asset paths, so it is served at /dashboard and /dashboard/ alike.
  router.get('/dashboard', (ctx) => serve(ctx, '/dashboard/'));
  for (const route of Object.keys(FILES)) {
    if (route !== '/dashboard/') router.get(route, (ctx) => serve(ctx, route));
  }
  return router;
}
