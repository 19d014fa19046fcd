import type Router from '@koa/router';
import type { Principal } from '../../storage/repositories/principal.js';
import type { RouteDeps } from '../app.js';
import { readPublishedMetrics } from '../../metrics/published-registry.js';
import { withTimeout } from '../interactive.js';
import { openApiDocument } from '../openapi.js';
import { runReadinessChecks } from '../readiness.js';

export function healthRoutes(router: Router, deps: RouteDeps): void {
  /** Liveness: the process answers. */
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });

  /** Readiness: every backing service answers. Why a check fails (backend errors, paths) is for the admin key only. */
  router.get('/readyz', async (ctx) => {
    const checked = await runReadinessChecks(deps.readiness);
    const isAdmin = (ctx.state.principal as Principal | undefined)?.role === 'admin';
    const result = isAdmin ? checked : { ...checked, checks: Object.fromEntries(Object.entries(checked.checks).map(([name, status]) => [name, status === 'ok' ? 'ok' : 'fail'])) };
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

  /**
   * Prometheus text: this API process (defaults, request durations, uploads, queue depths) followed
   * by the sum of what every live worker process published to Redis. A slow Redis only drops the
   * worker part and the queue depths, never the scrape.
   */
  router.get('/metrics', async (ctx) => {
    const own = await deps.metrics.registry.metrics();
    const workers = await withTimeout(readPublishedMetrics(deps.queues.connection, deps.config.QUEUE_PREFIX), 1000, () => new Error('timeout')).catch(
      () => '',
    );
    ctx.set('Content-Type', deps.metrics.registry.contentType);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = workers ? `${own.trimEnd()}\n${workers}` : own;
  });

  router.get('/v1/openapi.json', (ctx) => {
    ctx.body = openApiDocument();
  });
}
