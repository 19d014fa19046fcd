import type Router from '@koa/router';
import type { RouteDeps } from '../app.js';
import { openApiDocument } from '../openapi.js';
import { runReadinessChecks } from '../readiness.js';

export function healthRoutes(router: Router, deps: RouteDeps): void {
  /** Liveness: the process answers. */
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });

  /** Readiness: every backing service answers. */
  router.get('/readyz', async (ctx) => {
    const result = await runReadinessChecks(deps.readiness);
    ctx.set('Cache-Control', 'no-store');
    ctx.status = result.ready ? 200 : 503;
    ctx.body = result.ready
      ? { status: 'ready', checks: result.checks }
      : {
          status: 'unready',
          checks: result.checks,
          error: {
            code: 'not_ready',
            message: `not ready: ${Object.entries(result.checks)
              .filter(([, s]) => s !== 'ok')
              .map(([name]) => name)
              .join(', ')}`,
          },
        };
  });

  router.get('/metrics', async (ctx) => {
    ctx.set('Content-Type', deps.metrics.registry.contentType);
    ctx.body = await deps.metrics.registry.metrics();
  });

  router.get('/v1/openapi.json', (ctx) => {
    ctx.body = openApiDocument();
  });
}
