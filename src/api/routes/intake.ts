/**
 * Capture intake: a device's bulk upload, stored content-addressed, recorded as captures of one
 * batch and enqueued for the pipeline, with back-pressure per device and on the queues.
 */
import type Router from '@koa/router';
import type { Knex } from 'knex';
import type { Context } from 'koa';
import type { CapturedAtSource } from '../../../models/Capture.js';
import { CaptureLifecycle, INITIAL_STATE } from '../../storage/capture-lifecycle.js';
import { recordUpload, type IncomingCapture } from '../../storage/repositories/captures.js';
import type { RouteDeps } from '../app.js';
import { authorize, type Principal } from '../auth.js';
import { ApiError } from '../errors.js';
import { deviceRateLimiter, queueDepthGuard } from '../backpressure.js';
import { withTimeout } from '../interactive.js';
import { receiveMultipart, type ReceivedForm, type ReceivedImage } from '../multipart.js';
import { localTimeToInstant, plausibleCaptureTime } from '../time.js';
import { isoInstant } from '../validation.js';
import { captureErrorView } from './captures.js';

const ENQUEUE_TIMEOUT_MS = 3000;

/** Per-file rejection in a 202 answer, or in the error of a request whose every file was rejected. */
const rejectionView = (image: ReceivedImage) => ({
  index: image.index,
  filename: image.filename,
  status: image.rejection!.status,
  error: { code: image.rejection!.code, message: image.rejection!.message },
});

/**
 * capturedAt for each accepted image: the device's value (one for all, or one per image in order),
 * else EXIF DateTimeOriginal (with its recorded offset, or read in the store's time zone), else the
 * receipt time. Implausible EXIF times (unset camera clocks, the future) fall back to receipt.
 */
function resolveCapturedAt(
  image: ReceivedImage,
  deviceTimes: Date[],
  storeTimeZone: string,
  receivedAt: Date,
): { capturedAt: Date; capturedAtSource: CapturedAtSource } {
  const fromDevice = deviceTimes.length === 1 ? deviceTimes[0] : deviceTimes[image.index];
  if (fromDevice) return { capturedAt: fromDevice, capturedAtSource: 'device' };
  const header = image.stored!.header;
  let exif = header.exifCapturedAt;
  if (exif && header.exifCapturedAtLocal && exif.toISOString().slice(0, 19) === header.exifCapturedAtLocal.slice(0, 19)) {
    // No recorded offset: the camera's wall clock is the store's local time.
    exif = localTimeToInstant(header.exifCapturedAtLocal, storeTimeZone) ?? exif;
  }
  if (exif && plausibleCaptureTime(exif, receivedAt)) return { capturedAt: exif, capturedAtSource: 'exif' };
  return { capturedAt: receivedAt, capturedAtSource: 'receipt' };
}

/** Validates the form's capture times and records its accepted images as captures of one batch. */
async function recordImages(
  db: Knex,
  form: ReceivedForm,
  { accepted, rejected }: { accepted: ReceivedImage[]; rejected: ReturnType<typeof rejectionView>[] },
  device: Extract<Principal, { role: 'device' }>,
  receivedAt: Date,
) {
  const images = form.images;
  if (images.length === 0) throw new ApiError(400, 'validation_error', 'send one or more images in multipart fields named "images"');

  const rawTimes = form.fields.get('capturedAt') ?? [];
  const deviceTimes = rawTimes.map((value, i) => {
    const parsed = isoInstant.safeParse(value.trim());
    if (!parsed.success) {
      throw new ApiError(400, 'validation_error', `capturedAt[${i}] ${JSON.stringify(value.slice(0, 40))}: ${parsed.error.issues[0].message}`);
    }
    const at = new Date(parsed.data);
    if (!plausibleCaptureTime(at, receivedAt)) {
      throw new ApiError(400, 'validation_error', `capturedAt[${i}] ${parsed.data} is implausible (before 2001 or more than a day ahead of the server clock)`);
    }
    return at;
  });
  if (deviceTimes.length > 1 && deviceTimes.length !== images.length) {
    throw new ApiError(
      400,
      'validation_error',
      `got ${deviceTimes.length} capturedAt values for ${images.length} images: send one for all, or one per image in order`,
    );
  }

  if (accepted.length === 0) {
    const first = rejected[0];
    throw new ApiError(first.status, first.error.code, `no image accepted: ${first.error.message}`, { rejected });
  }

  const files: IncomingCapture[] = accepted.map((image) => {
    const stored = image.stored!;
    return {
      sha256: stored.sha256,
      blobKey: stored.key,
      bytes: stored.bytes,
      format: stored.header.format,
      width: stored.header.width,
      height: stored.header.height,
      ...resolveCapturedAt(image, deviceTimes, device.storeTimeZone, receivedAt),
    };
  });
  return recordUpload(db, device, files, receivedAt);
}

export function intakeRoutes(router: Router, deps: RouteDeps): void {
  const { db, blobs, config, queues } = deps;

  /**
   * Bulk upload from a device. 202 with the batch, one entry per accepted image (new or already
   * sent by this device) and a `rejected` entry per refused file; if every file is refused the
   * answer is the first refusal's status with all of them in `error.rejected`.
   */
  const inFlight = new Map<string, number>();
  const checkQueueDepth = queueDepthGuard(queues, config.MAX_QUEUE_DEPTH);
  const lifecycle = new CaptureLifecycle(db);
  const checkDeviceRate = deviceRateLimiter(queues.connection, config.QUEUE_PREFIX, config.DEVICE_UPLOADS_PER_MINUTE, config.DEVICE_UPLOAD_BURST);
  router.post('/v1/captures', async (ctx) => {
    const device = authorize(ctx, 'device');
    await checkDeviceRate(device.deviceId);
    await checkQueueDepth();
    // A robot retrying hard over a flaky link must not hog the intake: cap its parallel uploads.
    const running = inFlight.get(device.deviceId) ?? 0;
    if (running >= deps.maxConcurrentUploadsPerDevice) {
      ctx.set('Connection', 'close');
      throw new ApiError(429, 'too_many_requests', `at most ${deps.maxConcurrentUploadsPerDevice} uploads at a time per device; retry when one finishes`, undefined, { 'Retry-After': '2' });
    }
    inFlight.set(device.deviceId, running + 1);
    try {
      await intake(ctx, device);
    } finally {
      const left = (inFlight.get(device.deviceId) ?? 1) - 1;
      if (left <= 0) inFlight.delete(device.deviceId);
      else inFlight.set(device.deviceId, left);
    }
  });

  const intake = async (ctx: Context, device: Extract<Principal, { role: 'device' }>) => {
    const receivedAt = new Date();
    const form = await receiveMultipart(ctx.req, {
      blobs,
      prefix: 'captures',
      imageFields: ['images', 'images[]'],
      textFields: ['capturedAt'],
      fieldsBeforeImages: true,
      maxFiles: config.MAX_UPLOAD_FILES,
      maxFileBytes: config.MAX_UPLOAD_BYTES,
      maxTotalBytes: config.MAX_UPLOAD_TOTAL_BYTES,
      maxPixels: config.MAX_IMAGE_PIXELS,
      readHeader: deps.readHeader,
    });
    const accepted = form.images.filter((image) => image.stored);
    const rejected = form.images.filter((image) => image.rejection).map(rejectionView);
    deps.metrics.uploadedFiles.inc({ outcome: 'rejected' }, rejected.length);
    let recorded: Awaited<ReturnType<typeof recordUpload>>;
    try {
      recorded = await recordImages(db, form, { accepted, rejected }, device, receivedAt);
    } catch (error) {
      await Promise.allSettled(accepted.map((image) => blobs.discard(image.stored!)));
      throw error;
    }
    // Committed only now that captures reference them (see BlobStore on retention). A re-sent file
    // whose capture is finished is not needed again: committing it would bring back an image that
    // retention already deleted and will not look at again. A store fault here answers 507/503
    // (errors.ts) and takes back what this request recorded; the client's resend records it anew.
    const committed = await Promise.allSettled(
      accepted.map((image, i) => {
        const capture = recorded.captures[i];
        const finished = capture.duplicate && (capture.status === 'done' || capture.status === 'failed');
        return finished ? blobs.discard(image.stored!) : blobs.commit(image.stored!);
      }),
    );
    const storeFault = committed.find((outcome) => outcome.status === 'rejected');
    if (storeFault) {
      await lifecycle.withdrawUpload(recorded.batchId).catch((withdrawal: unknown) =>
        (ctx.state.log ?? deps.logger).error({ err: withdrawal, batchId: recorded.batchId }, 'could not withdraw an upload whose images were not stored'),
      );
      await Promise.allSettled(accepted.map((image) => blobs.discard(image.stored!)));
      throw storeFault.reason;
    }
    const fresh = recorded.captures.filter((c) => !c.duplicate);
    deps.metrics.uploadedFiles.inc({ outcome: 'new' }, fresh.length);
    deps.metrics.uploadedBytes.inc(accepted.reduce((sum, image) => sum + image.stored!.bytes, 0));
    deps.metrics.uploadedFiles.inc({ outcome: 'duplicate' }, recorded.captures.length - fresh.length);

    if (fresh.length > 0) {
      const jobs = fresh.map((c) => ({ captureId: c.id, run: INITIAL_STATE.run }));
      try {
        await withTimeout(queues.enqueueMany('vision', jobs), ENQUEUE_TIMEOUT_MS, () => new Error('enqueue timed out'));
      } catch (error) {
        // MySQL holds the captures as queued: the sweeper enqueues them once Redis is back.
        (ctx.state.log ?? deps.logger).warn({ err: error, batchId: recorded.batchId }, 'enqueue failed; captures left to the sweeper');
      }
    }

    ctx.status = 202;
    ctx.set('Location', `/v1/batches/${recorded.batchId}`);
    ctx.body = {
      batchId: recorded.batchId,
      captures: recorded.captures.map((c, i) => ({
        id: c.id,
        sha256: c.sha256,
        status: c.status,
        duplicate: c.duplicate,
        ...(c.status === 'failed' ? captureErrorView(c) : {}),
        index: accepted[i].index,
        filename: accepted[i].filename,
      })),
      rejected,
    };
  };
}
