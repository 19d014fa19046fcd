/** Batches, captures with their faces, and synchronous identify. */
import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import { z } from 'zod';
import type { Capture } from '../../../models/Capture.js';
import type { Face } from '../../../models/Face.js';
import { batchStatus, findBatch, findCapture, listCaptureFaces } from '../../storage/repositories/captures.js';
import { memberSummaries } from '../../storage/repositories/people.js';
import type { RouteDeps } from '../app.js';
import { actingMerchant, authorize } from '../auth.js';
import { ApiError, notFound } from '../errors.js';
import { interactiveRateLimiter } from '../backpressure.js';
import { runInteractive } from '../interactive.js';
import { idParams, parse, uuid } from '../validation.js';
import { receiveSingleImage } from './single-image.js';

const identifyQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(10).default(3),
  merchantId: uuid.optional(),
});

/** A failed capture's reason, as batches, captures and intake answers show it. */
export const captureErrorView = (c: { errorCode: string | null; errorMessage: string | null }) =>
  c.errorCode || c.errorMessage ? { error: { code: c.errorCode ?? 'failed', message: c.errorMessage ?? '' } } : {};

function faceView(face: Face) {
  return {
    id: face.id,
    index: face.faceIndex,
    box: { x: face.boxX, y: face.boxY, width: face.boxWidth, height: face.boxHeight },
    score: face.score,
    landmarks: face.landmarks,
    age: face.age,
    gender: face.gender,
    match:
      face.matchKind === null
        ? null
        : {
            kind: face.matchKind,
            ...(face.matchKind === 'member' ? { personId: face.personId } : { visitorId: face.visitorId }),
            similarity: face.similarity,
          },
  };
}

function captureView(capture: Capture, faces: Face[]) {
  return {
    id: capture.id,
    status: capture.status,
    stage: capture.stage,
    ...(capture.status === 'failed' ? captureErrorView(capture) : {}),
    batchId: capture.batchId,
    storeId: capture.storeId,
    deviceId: capture.deviceId,
    sha256: capture.sha256,
    bytes: capture.bytes,
    format: capture.format,
    width: capture.width,
    height: capture.height,
    capturedAt: capture.capturedAt.toISOString(),
    capturedAtSource: capture.capturedAtSource,
    receivedAt: capture.receivedAt.toISOString(),
    faces: faces.map(faceView),
  };
}

export function captureRoutes(router: Router, deps: RouteDeps): void {
  const { db, blobs, queues, config } = deps;
  const checkInteractiveRate = interactiveRateLimiter(queues.connection, config.QUEUE_PREFIX, config.MERCHANT_INTERACTIVE_PER_MINUTE, config.MERCHANT_INTERACTIVE_BURST);


  router.get('/v1/batches/:id', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant', 'device');
    const { id } = parse(idParams, ctx.params, 'path');
    const view = await findBatch(db, id, principal);
    if (!view) throw notFound('batch');
    const count = (status: string) => view.captures.filter((c) => c.status === status).length;
    ctx.body = {
      id: view.batch.id,
      status: batchStatus(view.captures.map((c) => c.status)),
      total: view.captures.length,
      queued: count('queued'),
      processing: count('processing'),
      done: count('done'),
      failed: count('failed'),
      storeId: view.batch.storeId,
      deviceId: view.batch.deviceId,
      createdAt: view.batch.createdAt.toISOString(),
      captures: view.captures.map((c) => ({ id: c.id, status: c.status, sha256: c.sha256, ...(c.status === 'failed' ? captureErrorView(c) : {}) })),
    };
  });

  router.get('/v1/captures/:id', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant', 'device');
    const { id } = parse(idParams, ctx.params, 'path');
    const capture = await findCapture(db, id, principal);
    if (!capture) throw notFound('capture');
    ctx.body = captureView(capture, await listCaptureFaces(db, capture.id));
  });

  /** Face sign-in: best member matches for each face of one image, answered synchronously. */
  router.post('/v1/identify', async (ctx) => {
    const principal = authorize(ctx, 'merchant', 'admin');
    const query = parse(identifyQuery, ctx.query, 'query');
    const merchantId = actingMerchant(principal, query.merchantId);
    await checkInteractiveRate(merchantId);
    const prefix = `identify/${randomUUID()}`;
    try {
      const image = await receiveSingleImage(ctx.req, deps, prefix);
      const result = await runInteractive(queues, 'identify', { merchantId, imageKey: image.key, limit: query.limit }, deps.interactiveTimeoutMs);
      if (!result.ok) {
        const status = result.code === 'unsupported_format' ? 415 : result.code === 'too_large' ? 413 : 422;
        throw new ApiError(status, result.code, result.message);
      }
      const ids = [...new Set(result.faces.flatMap((f) => f.matches.map((m) => m.personId)))];
      const members = await memberSummaries(db, merchantId, ids);
      ctx.body = {
        faces: result.faces.map((f) => ({
          box: f.box,
          score: f.score,
          landmarks: f.landmarks,
          age: f.age,
          gender: f.gender,
          matches: f.matches
            .filter((m) => members.has(m.personId))
            .map((m) => {
              const member = members.get(m.personId)!;
              return { personId: m.personId, externalId: member.externalId, displayName: member.displayName, similarity: m.similarity };
            }),
        })),
      };
    } finally {
      // Identify images are not kept.
      await blobs.deletePrefix(prefix).catch((error: unknown) => (ctx.state.log ?? deps.logger).warn({ err: error, prefix }, 'identify image not deleted'));
    }
  });
}