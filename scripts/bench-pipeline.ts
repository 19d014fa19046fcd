/**
 * `npm run bench:pipeline [-- --dataset DIR --limit N]`: images per second through the whole queued
 * pipeline (HTTP intake, every stage in its own process, as `npm start` runs them) against a plain
 * in-process loop over the same models and images. Needs MariaDB and Redis; starts Chroma itself.
 * Also prints the mean handler time of each stage and the CPU each service process spent per image
 * over the timed run (from /proc; MariaDB and Redis are shared with anything else using them).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import { startLocalChroma } from '../src/gallery/local-server.js';
import { imageLimits, prepareImage } from '../src/imaging/prepare.js';
import { STAGES } from '../src/queue/contract.js';
import { createLogger } from '../src/logger.js';
import { connectDatabase, ensureDatabase } from '../src/storage/db.js';
import { serviceSpecs, Supervisor, WORKER_GROUPS } from '../src/supervisor.js';
import { createDescriber, createDetector } from '../src/vision/index.js';
import { cpuByPart, cpuSpent } from './process-cpu.js';

const { values: args } = parseArgs({
  options: {
    dataset: { type: 'string', default: process.env.FACEPERKS_DATASET ?? path.resolve('../shared/faces') },
    limit: { type: 'string', default: '0' },
    'batch-size': { type: 'string', default: '20' },
  },
});

const root = path.resolve(import.meta.dirname, '..');
const IMAGE = /\.(jpe?g|png|webp)$/i;

async function listImages(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && IMAGE.test(entry.name))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}

async function inProcessLoop(images: Buffer[], config: ReturnType<typeof loadConfig>): Promise<number> {
  const options = { modelsDir: config.modelsDir, pack: config.MODEL_PACK, threads: 2 };
  const detector = await createDetector({ ...options, detectThreshold: config.DETECT_THRESHOLD });
  const describer = await createDescriber(options);
  const limits = imageLimits(config);
  const run = async (bytes: Buffer) => {
    const prepared = await prepareImage(bytes, limits);
    await describer.describe(prepared.image, await detector.detect(prepared.image));
  };
  for (const bytes of images.slice(0, 5)) await run(bytes);
  const started = performance.now();
  for (const bytes of images) await run(bytes);
  const seconds = (performance.now() - started) / 1000;
  await detector.release();
  await describer.release();
  return seconds;
}

type Json = Record<string, unknown>;

async function call(base: string, key: string, method: string, route: string, body?: Json | FormData): Promise<Json> {
  const response = await fetch(`${base}${route}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body instanceof FormData || !body ? {} : { 'content-type': 'application/json' }) },
    body: body instanceof FormData ? body : body ? JSON.stringify(body) : undefined,
  });
  const json = (await response.json()) as Json;
  if (!response.ok) throw new Error(`${method} ${route} -> ${response.status} ${JSON.stringify(json)}`);
  return json;
}

async function waitForReady(base: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new Error('the API did not become ready');
}

/** Uploads every image in batches and waits until each capture is done or failed. */
async function upload(base: string, deviceKey: string, images: { name: string; bytes: Buffer }[], batchSize: number) {
  const latencies: number[] = [];
  const batchIds: string[] = [];
  for (let i = 0; i < images.length; i += batchSize) {
    const form = new FormData();
    for (const image of images.slice(i, i + batchSize)) form.append("images", new Blob([new Uint8Array(image.bytes)]), image.name);
    const started = performance.now();
    const response = await call(base, deviceKey, 'POST', '/v1/captures', form);
    latencies.push(performance.now() - started);
    batchIds.push(response.batchId as string);
  }
  let failed = 0;
  for (const batchId of batchIds) {
    for (;;) {
      const batch = await call(base, deviceKey, 'GET', `/v1/batches/${batchId}`);
      if (batch.status === 'done') {
        failed += batch.failed as number;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return { latencies, failed };
}

type StageTotals = Map<string, { count: number; seconds: number }>;

/** Successful jobs and their handler seconds per stage, from the service's own /metrics. */
async function stageTotals(base: string, key: string): Promise<StageTotals> {
  const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
  const stages: StageTotals = new Map();
  for (const match of text.matchAll(/^faceperks_stage_duration_seconds_(sum|count)\{([^}]*)\} ([\d.e+-]+)$/gm)) {
    const stage = /stage="([^"]+)"/.exec(match[2])?.[1];
    if (!stage || !/outcome="ok"/.test(match[2])) continue;
    const entry = stages.get(stage) ?? { count: 0, seconds: 0 };
    if (match[1] === 'sum') entry.seconds += Number(match[3]);
    else entry.count += Number(match[3]);
    stages.set(stage, entry);
  }
  return stages;
}

/**
 * The timed run's share of the stage totals. Workers publish their metrics every few seconds, so
 * this waits (up to 15 s) until every stage has counted every capture that finished.
 */
async function stageDurations(base: string, key: string, before: StageTotals, finished: number): Promise<StageTotals> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const after = await stageTotals(base, key);
    const run: StageTotals = new Map(
      [...after].map(([stage, t]) => [stage, { count: t.count - (before.get(stage)?.count ?? 0), seconds: t.seconds - (before.get(stage)?.seconds ?? 0) }]),
    );
    if (STAGES.every((stage) => (run.get(stage)?.count ?? 0) >= finished) || Date.now() > deadline) return run;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main(): Promise<void> {
  const files = await listImages(args.dataset);
  const limit = Number(args.limit);
  const chosen = limit > 0 ? files.slice(0, limit) : files;
  if (chosen.length === 0) throw new Error(`no images under ${args.dataset}`);
  const images = await Promise.all(chosen.map(async (file) => ({ name: path.basename(file), bytes: await fs.readFile(file) })));

  const suffix = randomBytes(4).toString('hex');
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `faceperks-bench-${suffix}-`));
  const base = loadConfig();
  const databaseUrl = new URL(base.DATABASE_URL);
  databaseUrl.pathname = `/fp_bench_${suffix}`;
  const port = 3900 + Math.floor(Math.random() * 90);
  const adminKey = randomBytes(24).toString('hex');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl.toString(),
    DATA_DIR: dataDir,
    MODELS_DIR: base.modelsDir,
    PORT: String(port),
    QUEUE_PREFIX: `bench${suffix}`,
    FACEPERKS_ADMIN_KEY: adminKey,
    LOG_LEVEL: 'warn',
  };
  const config = loadConfig(env);

  console.log(`in-process loop over ${images.length} images (${config.MODEL_PACK} pack, 1 process, 2 threads)…`);
  const inProcessSeconds = await inProcessLoop(images.map((image) => image.bytes), config);

  const chroma = await startLocalChroma(path.join(dataDir, 'chroma'), 8790 + Math.floor(Math.random() * 9));
  env.CHROMA_URL = chroma.url;
  await ensureDatabase(config);
  const logger = createLogger('warn', 'bench');
  const supervisor = new Supervisor(root, env, logger);
  try {
    for (const spec of serviceSpecs(root)) supervisor.start(spec);
    const api = `http://127.0.0.1:${port}`;
    await waitForReady(api, 60_000);

    const merchant = await call(api, adminKey, 'POST', '/v1/merchants', { name: 'Bench' });
    const store = await call(api, adminKey, 'POST', '/v1/stores', { merchantId: merchant.id, name: 'Bench store', timezone: 'UTC' });
    const warmDevice = await call(api, adminKey, 'POST', `/v1/stores/${store.id}/devices`, { name: 'warm-up' });
    const device = await call(api, adminKey, 'POST', `/v1/stores/${store.id}/devices`, { name: 'bench' });

    console.log('queued pipeline: warming up the workers…');
    const warmUp = images.slice(0, 6);
    const warmUpFailed = (await upload(api, warmDevice.key as string, warmUp, warmUp.length)).failed;
    console.log(`queued pipeline over ${images.length} images (api + ${WORKER_GROUPS.length} worker processes)…`);
    // Once the warm-up shows in the published metrics, so that none of it counts in the run.
    const stagesBefore = await stageDurations(api, adminKey, new Map(), warmUp.length - warmUpFailed);
    const cpuBefore = cpuByPart();
    const benchCpu = process.cpuUsage();
    const started = performance.now();
    const { latencies, failed } = await upload(api, device.key as string, images, Number(args['batch-size']));
    const pipelineSeconds = (performance.now() - started) / 1000;
    const cpu = cpuSpent(cpuBefore, cpuByPart());
    const benchUsed = process.cpuUsage(benchCpu);
    cpu.set('bench client', (benchUsed.user + benchUsed.system) / 1000);

    const rows = [
      ['in-process loop', images.length, inProcessSeconds, images.length / inProcessSeconds],
      ['queued pipeline', images.length, pipelineSeconds, images.length / pipelineSeconds],
    ] as const;
    console.log('\n| mode | images | seconds | images/s |\n|---|---:|---:|---:|');
    for (const [mode, count, seconds, rate] of rows) console.log(`| ${mode} | ${count} | ${seconds.toFixed(2)} | ${rate.toFixed(2)} |`);
    console.log(
      `\nintake POST /v1/captures (${args['batch-size']} images each): p50 ${percentile(latencies, 50).toFixed(0)} ms, p95 ${percentile(latencies, 95).toFixed(0)} ms; failed captures: ${failed}`,
    );
    console.log(`pipeline/in-process ratio: ${(inProcessSeconds / pipelineSeconds).toFixed(2)}`);
    console.log('\n| stage | jobs | mean ms per job |\n|---|---:|---:|');
    const stages = await stageDurations(api, adminKey, stagesBefore, images.length - failed);
    for (const stage of STAGES) {
      const { count = 0, seconds = 0 } = stages.get(stage) ?? {};
      console.log(`| ${stage} | ${count} | ${count > 0 ? ((seconds / count) * 1000).toFixed(1) : '–'} |`);
    }
    if (cpu.size > 1) {
      const total = [...cpu.values()].reduce((a, b) => a + b, 0);
      console.log('\n| process | CPU ms per image |\n|---|---:|');
      for (const [part, ms] of [...cpu].sort((a, b) => b[1] - a[1])) console.log(`| ${part} | ${(ms / images.length).toFixed(1)} |`);
      console.log(`| all | ${(total / images.length).toFixed(1)} |`);
    }
  } finally {
    await supervisor.stop(10_000);
    await chroma.stop();
    const db = connectDatabase(config, { min: 0, max: 1 });
    await db.raw('DROP DATABASE IF EXISTS ??', [config.databaseName]);
    await db.destroy();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
