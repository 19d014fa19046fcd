/**
 * Operator actions: re-run captures through the pipeline (after a model or threshold change), and
 * migrate members to another model pack (reembed).
 */
import type Router from '@koa/router';
import { z } from 'zod';
import { PACK_NAMES } from '../../config.js';
import { JOBS, OPERATIONS_QUEUE, REEMBED_QUEUE, type JobPayload } from '../../queue/contract.js';
import { countSelection } from '../../services/reprocess.js';
import { findBatch } from '../../storage/repositories/captures.js';
import { findStore } from '../../storage/repositories/tenants.js';
import { activePack } from '../../storage/settings.js';
import type { RouteDeps } from '../app.js';
import { authorize } from '../auth.js';
import { ApiError, notFound } from '../errors.js';
import { isoInstant, parse, uuid } from '../validation.js';

const MAX_RANGE_DAYS = 366;

const reprocessBody = z.union([
  z.strictObject({ batchId: uuid }),
  z.strictObject({ storeId: uuid, from: isoInstant, to: isoInstant }),
]);

const reembedBody = z.strictObject({ pack: z.enum(PACK_NAMES) });
const jobParams = z.object({ jobId: z.string().regex(/^[A-Za-z0-9:_-]{1,100}$/, { message: 'must be a job id' }) });

export function operationRoutes(router: Router, { db, queues, config }: RouteDeps): void {
  /**
   * 202 {jobId, total}: a background job restarts the selection a page at a time, yielding while the
   * pipeline is busy; its progress is at GET /v1/reprocess/:jobId. Captures whose stored image was
   * already deleted (KEEP_IMAGES=false) cannot re-run: counted as imageGone.
   */
  router.post('/v1/reprocess', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const body = parse(reprocessBody, ctx.request.body, 'body');
    let merchantId: string;
    if ('batchId' in body) {
      const batch = await findBatch(db, body.batchId, principal);
      if (!batch) throw notFound('batch');
      merchantId = batch.batch.merchantId;
    } else {
      const store = await findStore(db, body.storeId, principal);
      if (!store) throw notFound('store');
      const [from, to] = [new Date(body.from), new Date(body.to)];
      if (!(from < to) || to.getTime() - from.getTime() > MAX_RANGE_DAYS * 86_400_000) {
        throw new ApiError(400, 'validation_error', `from must be before to, at most ${MAX_RANGE_DAYS} days apart`);
      }
      merchantId = store.merchantId;
    }
    const selection = 'batchId' in body ? body : { storeId: body.storeId, from: new Date(body.from).toISOString(), to: new Date(body.to).toISOString() };
    const job = await queues.enqueue('reprocess', { merchantId, selection });
    ctx.status = 202;
    ctx.set('Location', `/v1/reprocess/${job.id}`);
    ctx.body = { jobId: job.id, state: 'waiting', total: await countSelection(db, merchantId, selection) };
  });

  /** The job's state and progress {total, done, queued, imageGone}; another merchant's job is a 404. */
  router.get('/v1/reprocess/:jobId', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const { jobId } = parse(jobParams, ctx.params, 'path');
    const queue = queues.queue(OPERATIONS_QUEUE);
    const state = await queue.getJobState(jobId);
    const job = await queue.getJob(jobId);
    const payload = job?.name === 'reprocess' ? JOBS.reprocess.payload.safeParse(job.data) : undefined;
    if (!job || !payload?.success || (principal.role === 'merchant' && principal.merchantId !== payload.data.merchantId)) throw notFound('reprocess job');
    ctx.body = {
      jobId: job.id,
      selection: payload.data.selection,
      state,
      progress: typeof job.progress === 'object' ? job.progress : null,
      attempts: job.attemptsMade,
      ...(job.failedReason ? { error: job.failedReason } : {}),
    };
  });

  /**
   * 202 {jobId, pack}: a background job embeds every enrolled face with `pack` and then makes it the
   * active pack (workers restart on it). 409 when it is active already, or another migration runs.
   * The worker checks the pack's model files; when some are missing the job fails naming them.
   */
  router.post('/v1/reembed', async (ctx) => {
    authorize(ctx, 'admin');
    const { pack } = parse(reembedBody, ctx.request.body, 'body');
    const active = await activePack(db, config.MODEL_PACK);
    if (pack === active) throw new ApiError(409, 'pack_active', `pack ${pack} is already the active pack`);
    const queue = queues.queue(REEMBED_QUEUE);
    const running = (await queue.getJobs(['active', 'waiting', 'delayed', 'prioritized']))
      .filter((job) => job && job.name === 'reembed' && !(job.data as JobPayload<'reembed'>).catchUp);
    const same = running.find((job) => (job.data as JobPayload<'reembed'>).pack === pack);
    if (same) {
      // A client retrying its request gets the migration that is already under way.
      ctx.status = 202;
      ctx.body = { jobId: same.id, pack, activePack: active, alreadyRunning: true };
      return;
    }
    if (running.length > 0) {
      const other = running[0];
      throw new ApiError(409, 'reembed_in_progress', `a migration to pack ${(other.data as JobPayload<'reembed'>).pack} is under way (job ${other.id})`, { jobId: other.id });
    }
    const job = await queues.enqueue('reembed', { pack });
    ctx.status = 202;
    ctx.body = { jobId: job.id, pack, activePack: active, alreadyRunning: false };
  });

  /** The migration's state: waiting|active|completed|failed…, progress {pass, done, total, failed}, result or error. */
  router.get('/v1/reembed/:jobId', async (ctx) => {
    authorize(ctx, 'admin');
    const { jobId } = parse(jobParams, ctx.params, 'path');
    const queue = queues.queue(REEMBED_QUEUE);
    // State first, then the job: a job that finishes in between is read with its result.
    const state = await queue.getJobState(jobId);
    const job = await queue.getJob(jobId);
    if (!job || job.name !== 'reembed') throw notFound('reembed job');
    ctx.body = {
      jobId: job.id,
      pack: (job.data as JobPayload<'reembed'>).pack,
      catchUp: Boolean((job.data as JobPayload<'reembed'>).catchUp),
      state,
      activePack: await activePack(db, config.MODEL_PACK),
      progress: typeof job.progress === 'object' ? job.progress : null,
      attempts: job.attemptsMade,
      ...(state === 'completed' ? { result: job.returnvalue } : {}),
      ...(job.failedReason ? { error: job.failedReason } : {}),
    };
  });
}
