/** The whole service in one test process: the API plus every worker, on real MariaDB, Redis, Chroma and models. */
import { existsSync, mkdtempSync, symlinkSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Worker } from 'bullmq';
import sharp from 'sharp';
import { loadConfig } from '../../src/config.js';
import { ChromaGallery } from '../../src/gallery/chroma-gallery.js';
import { createLogger } from '../../src/logger.js';
import { createPipelineMetrics } from '../../src/metrics/pipeline-metrics.js';
import { CaptureLifecycle } from '../../src/storage/capture-lifecycle.js';
import { createDetector } from '../../src/vision/index.js';
import { packFiles, resolvePack } from '../../src/vision/packs.js';
import type { Box } from '../../src/vision/types.js';
import { startWorkers, WORKER_NAMES, type RunningWorkers } from '../../workers/runner.js';
import type { WorkerContext } from '../../workers/context.js';
import { startTestApi, type TestApi } from '../api/support.js';
import { SHARED_DIR } from '../support/services.js';

export const FIXTURES = path.resolve(import.meta.dirname, '../../.cache/fixtures');

/** `workers`: every queue worker started so far; a test may add its own, which `close` stops too. */
export type TestService = TestApi & { gallery: ChromaGallery; context: WorkerContext; workers: Worker[]; startWorkers(): Promise<void>; stopWorkers(): Promise<void> };

/** `workers: false` leaves the queues without consumers until `startWorkers()`. */
export async function startTestService(env: Record<string, string> = {}, options: { workers?: boolean } = {}): Promise<TestService> {
  const chromaUrl = env.CHROMA_URL ?? process.env.CHROMA_URL!;
  const overrides = { STAGE_BACKOFF_MS: '200', ...env, CHROMA_URL: chromaUrl };
  const gallery = new ChromaGallery(chromaUrl, loadConfig({ ...process.env, ...overrides }).MODEL_PACK);
  const t = await startTestApi({ env: overrides, deps: { gallery } });
  const context: WorkerContext = {
    config: t.env.config,
    db: t.env.db,
    queues: t.queues,
    blobs: t.blobs,
    gallery,
    lifecycle: new CaptureLifecycle(t.env.db),
    logger: createLogger(t.env.config.LOG_LEVEL, 'test-workers'),
    metrics: createPipelineMetrics(),
    close: async () => {},
  };
  const running: RunningWorkers[] = [];
  const workers: Worker[] = [];
  const service: TestService = {
    ...t,
    gallery,
    context,
    workers,
    async startWorkers() {
      const started = await startWorkers(WORKER_NAMES, context);
      running.push(started);
      workers.push(...started.workers);
    },
    async stopWorkers() {
      await Promise.all([...running.splice(0).map((started) => started.close()), ...workers.splice(0).map((worker) => worker.close())]);
    },
    async close() {
      await service.stopWorkers();
      await t.close();
    },
  };
  if (options.workers !== false) await service.startWorkers();
  return service;
}

export async function fixture(name: string): Promise<Buffer> {
  return fs.readFile(path.join(FIXTURES, name));
}

/** Faces of an image found by the real detector, largest first, in original pixels. */
export async function facesIn(bytes: Buffer, modelsDir: string): Promise<Box[]> {
  const { data, info } = await sharp(bytes).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const detector = await createDetector({ modelsDir, pack: 'default' });
  try {
    const faces = await detector.detect({ data, width: info.width, height: info.height });
    return faces.map((face) => face.box).sort((a, b) => b.width * b.height - a.width * a.height);
  } finally {
    await detector.release();
  }
}

/** A JPEG of the region around `box`, grown by `margin` box sizes on each side and resized to `width`. */
export async function cropAround(bytes: Buffer, box: Box, margin: number, width: number, quality = 88): Promise<Buffer> {
  const meta = await sharp(bytes).metadata();
  const left = Math.max(0, Math.round(box.x - box.width * margin));
  const top = Math.max(0, Math.round(box.y - box.height * margin));
  const right = Math.min(meta.width!, Math.round(box.x + box.width * (1 + margin)));
  const bottom = Math.min(meta.height!, Math.round(box.y + box.height * (1 + margin)));
  return sharp(bytes)
    .extract({ left, top, width: right - left, height: bottom - top })
    .resize({ width })
    .jpeg({ quality })
    .toBuffer();
}

export async function waitFor<T>(probe: () => Promise<T | undefined | false>, timeoutMs = 60_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** RetinaFace's detector from ../shared/models: with it the retinaface pack can be installed. */
export const RETINAFACE_MODEL = path.join(SHARED_DIR, 'models', 'retinaface_mnet025__FaceDetector.onnx');
export const retinafaceAvailable = existsSync(RETINAFACE_MODEL);
/** Appended to a suite's name when it skips without the model; a skip fails a CI run (scripts/run-tests.mjs). */
export const retinafaceSkipReason = retinafaceAvailable ? '' : ` [skipped: ${RETINAFACE_MODEL} is absent (the retinaface pack's detector; set FACEPERKS_SHARED_DIR)]`;

/** A new models folder with the default pack's files and RetinaFace's: the retinaface pack is installed, insightface is not. */
export function modelsWithRetinaface(label: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `faceperks-${label}-models-`));
  const defaultDir = path.resolve(import.meta.dirname, '../..', process.env.MODELS_DIR ?? 'data/models');
  for (const { file } of packFiles(resolvePack('default'))) symlinkSync(path.join(defaultDir, file), path.join(dir, file));
  symlinkSync(RETINAFACE_MODEL, path.join(dir, path.basename(RETINAFACE_MODEL)));
  return dir;
}
