/**
 * A bare Koa app with only the analytics API, the store list and the merchant dashboard, on the
 * real auth middleware and error mapping. Used by the analytics tests and `npm run bench:analytics`;
 * the service itself mounts the same routers in src/api/app.ts / src/main.ts.
 */
import Router from '@koa/router';
import Koa from 'koa';
import type { Knex } from 'knex';
import { merchantDashboard } from '../dashboards/merchant/index.js';
import { authenticate } from '../src/api/auth.js';
import { errorMapper } from '../src/api/errors.js';
import type { RouteDeps } from '../src/api/app.js';
import { analyticsRoutes } from '../src/api/routes/analytics.js';
import { tenantRoutes } from '../src/api/routes/tenants.js';
import type { Config } from '../src/config.js';
import { createLogger } from '../src/logger.js';

export function createAnalyticsApp(db: Knex, config: Config, options: { cacheBytes?: number } = {}): Koa {
  const logger = createLogger('silent', 'analytics');
  const app = new Koa();
  app.use(errorMapper(logger));
  app.use(merchantDashboard().routes());
  app.use(authenticate(db));
  const tenants = new Router();
  tenantRoutes(tenants, { db, config, logger } as unknown as RouteDeps);
  app.use(tenants.routes());
  app.use(analyticsRoutes({ db, config, cacheBytes: options.cacheBytes }).routes());
  return app;
}
