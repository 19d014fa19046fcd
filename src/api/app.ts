/**
 * The intake and management API: `createApp(deps)` composes request ids, logging, metrics, the
 * error mapper, Bull Board (admin only), JSON body parsing, API-key auth and the v1 routes.
 * It never imports the vision layer: inference runs in the workers, reached through the queues.
 */
import { randomUUID } from 'node:crypto';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { createBullBoard } from '../../dashboards/bull-board.js';
import { merchantDashboard } from '../../dashboards/merchant/index.js';
import type { Config } from '../config.js';
import type { Gallery } from '../gallery/gallery.js';
import { readImageHeader } from '../imaging/prepare.js';
import { createLogger } from '../logger.js';
import type { Queues } from '../queue/queues.js';
import type { BlobStore } from '../storage/blobs.js';
import { findPrincipalByKey } from '../storage/repositories/apiKeys.js';
import { authenticate } from './auth.js';
import { ApiError, errorMapper } from './errors.js';
import { createApiMetrics, registerQueueGauges, type ApiMetrics } from './metrics.js';
import type { ReadHeader } from './multipart.js';
import { defaultReadinessChecks, type ReadinessCheck } from './readiness.js';
import { analyticsRoutes } from './routes/analytics.js';
import { auditRoutes } from './routes/audit.js';
import { captureRoutes } from './routes/captures.js';
import { intakeRoutes } from './routes/intake.js';
import { operationRoutes } from './routes/operations.js';
import { webhookRoutes } from './routes/webhooks.js';
import { healthRoutes } from './routes/health.js';
import { lookupRoutes } from './routes/lookup.js';
import { peopleRoutes } from './routes/people.js';
import { pointRoutes } from './routes/points.js';
import { tenantRoutes } from './routes/tenants.js';
import { visitorRoutes } from './routes/visitors.js';
import { faceRejectionRoutes } from './routes/face-rejections.js';

export type AppDeps = {
  config: Config;
  db: Knex;
  blobs: BlobStore;
  queues: Queues;
  /** Needed to erase, move and add vectors (erasure, face removal, merge, link, undo, reject); without it those endpoints answer 503. */
  gallery?: Pick<Gallery, 'deleteSubject' | 'deleteVectors' | 'subjectVectorIds' | 'moveVectors' | 'search' | 'upsert'>;
  logger?: Logger;
  /** Defaults to MySQL, Redis, Chroma heartbeat and model files. */
  readiness?: ReadinessCheck[];
  /** Defaults to a fresh registry with default metrics; pass yours to add gauges. */
  metrics?: ApiMetrics;
  /** How long enrol/identify wait for a worker (default 30 s). */
  interactiveTimeoutMs?: number;
  /** Uploads one device may have in flight in this process; more answer 429 (default 4). */
  maxConcurrentUploadsPerDevice?: number;
  /** Header reader for uploads (default src/imaging readImageHeader). */
  readHeader?: ReadHeader;
};

/** Resolved dependencies handed to the route modules. */
export type RouteDeps = Required<Omit<AppDeps, 'gallery'>> & Pick<AppDeps, 'gallery'>;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/** Request id (the client's if well-formed), access log line and duration histogram. */
function requestLog(logger: Logger, metrics: ApiMetrics): Koa.Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    const incoming = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.state.log = logger.child({ requestId });
    ctx.set('X-Request-Id', requestId);
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = (ctx as { _matchedRoute?: string })._matchedRoute ?? (ctx.path.startsWith('/admin/queues') ? '/admin/queues' : 'unmatched');
      metrics.httpDuration.observe({ method: ctx.method, route: String(route), status: String(ctx.status) }, seconds);
      const log = ctx.state.log as Logger;
      const line = { method: ctx.method, path: ctx.path, route, status: ctx.status, ms: Math.round(seconds * 1000) };
      if (ctx.status >= 500) log.error(line, 'request');
      else log.info(line, 'request');
    }
  };
}

function jsonBody(): Koa.Middleware {
  return bodyParser({
    enableTypes: ['json'],
    jsonLimit: '100kb',
    encoding: 'utf-8',
    onError(error) {
      const status = (error as { status?: number }).status;
      if (status === 413) throw new ApiError(413, 'payload_too_large', 'the JSON body exceeds 100 kB');
      if (status === 415) throw new ApiError(415, 'unsupported_media_type', 'unsupported body charset or encoding');
      throw new ApiError(400, 'invalid_json', 'the body is not valid JSON');
    },
  });
}

/** Bodies are JSON or (uploads) multipart: anything else would reach validation as an empty body. */
function onlyJsonOrMultipart(): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.request.length && !ctx.is('application/json', 'multipart/form-data')) {
      throw new ApiError(415, 'unsupported_media_type', `send the body as application/json (or multipart/form-data for uploads), not ${ctx.get('content-type') || 'without a content type'}`);
    }
    return next();
  };
}

export function createApp(deps: AppDeps): Koa {
  const logger = deps.logger ?? createLogger(deps.config.LOG_LEVEL, 'api');
  const resolved: RouteDeps = {
    ...deps,
    logger,
    readiness: deps.readiness ?? defaultReadinessChecks(deps),
    metrics: deps.metrics ?? createApiMetrics(),
    interactiveTimeoutMs: deps.interactiveTimeoutMs ?? 30_000,
    maxConcurrentUploadsPerDevice: deps.maxConcurrentUploadsPerDevice ?? 4,
    readHeader: deps.readHeader ?? ((bytes, limits) => readImageHeader(bytes, limits)),
  };
  registerQueueGauges(resolved.metrics, deps.queues);
  const app = new Koa({ proxy: false });
  app.silent = true;

  // Outermost, so they see the final status.
  app.use(requestLog(logger, resolved.metrics));
  app.use(errorMapper(logger));

  // Bull Board before the body parser: it parses its own bodies.
  app.use(
    createBullBoard({
      queues: deps.queues,
      basePath: '/admin/queues',
      roleOfKey: async (key) => (await findPrincipalByKey(deps.db, key))?.role ?? null,
    }),
  );

  app.use(jsonBody());
  app.use(onlyJsonOrMultipart());
  // The merchant dashboard is a static page; it calls the API with the key the user signs in with.
  app.use(merchantDashboard().routes());
  app.use(authenticate(deps.db));

  const router = new Router();
  healthRoutes(router, resolved);
  tenantRoutes(router, resolved);
  peopleRoutes(router, resolved);
  pointRoutes(router, resolved);
  visitorRoutes(router, resolved);
  faceRejectionRoutes(router, resolved);
  auditRoutes(router, resolved);
  intakeRoutes(router, resolved);
  captureRoutes(router, resolved);
  operationRoutes(router, resolved);
  webhookRoutes(router, resolved);
  const analytics = analyticsRoutes({ db: deps.db, config: deps.config });
  app.use(router.routes());
  app.use(analytics.routes());
  app.use(lookupRoutes(resolved).routes());
  app.use(router.allowedMethods({ throw: true }));
  app.use(analytics.allowedMethods({ throw: true }));

  app.on('error', (error: Error) => logger.debug({ err: error }, 'koa error'));
  return app;
}
