/**
 * `npm run bench:pipeline [-- --dataset DIR --limit N]`: images per second through the whole queued
 * pipeline (HTTP intake, every stage, as `npm start` runs them) against a plain
 * in-process loop over the same models and images. Needs MariaDB and Redis; starts Chroma itself.
 * Also prints the mean handler time of each stage and the CPU each service process spent per image
 * over the timed run (from /proc; MariaDB and Redis are shared with anything else using them).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../src/config.js';
import { imageLimits, prepareImage } from '../src/imaging/prepare.js';
import { STAGES } from '../src/queue/contract.js';
import { workerGroups } from '../src/supervisor.js';
import { createDescriber, createDetector } from '../src/vision/index.js';
import { cpuByPart, cpuSpent } from './process-cpu.js';
import { defaultDataset, listPhotos } from './dataset.js';
import { addDevice, createTenant, prepareService, startService, uploadAndWait } from './service-harness.js';
import { percentile } from './stats.js';

const { values: args } = parseArgs({
  options: {
    dataset: { type: 'string', default: process.env.FACEPERKS_DATASET ?? defaultDataset() },
    limit: { type: 'string', default: '0' },
    'batch-size': { type: 'string', default: '20' },
  },
});

/** The pipeline's benchmark set: the dataset's JPEG, PNG and WebP photos (robots send those). */
const CAMERA_FORMAT = /\.(jpe?g|png|webp)$/i;

/**
 * Seconds of each of `runs` passes of a plain loop over the images (after a warm-up): the
 * baseline. Three passes, because one pass of a few seconds on this shared machine varies by 20 %.
 */
async function inProcessLoop(images: Buffer[], config: Config, runs: number): Promise<number[]> {
  const options = { modelsDir: config.modelsDir, pack: config.MODEL_PACK, threads: 2 };
  const detector = await createDetector({ ...options, detectThreshold: config.DETECT_THRESHOLD });
  const describer = await createDescriber(options);
  const limits = imageLimits(config);
  const run = async (bytes: Buffer) => {
    const prepared = await prepareImage(bytes, limits);
    await describer.describe(prepared.image, await detector.detect(prepared.image));
  };
  for (const bytes of images.slice(0, 5)) await run(bytes);
  const seconds: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    for (const bytes of images) await run(bytes);
    seconds.push((performance.now() - started) / 1000);
  }
  await detector.release();
  await describer.release();
  return seconds;
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

async function main(): Promise<void> {
  const files = listPhotos(args.dataset).filter((file) => CAMERA_FORMAT.test(file));
  const limit = Number(args.limit);
  const chosen = limit > 0 ? files.slice(0, limit) : files;
  if (chosen.length === 0) throw new Error(`no images under ${args.dataset}`);
  const images = await Promise.all(chosen.map(async (file) => ({ name: path.basename(file), bytes: await fs.readFile(file) })));

  const setup = prepareService('bench');
  const { config } = setup;

  console.log(`in-process loop over ${images.length} images (${config.MODEL_PACK} pack, 1 process, 2 threads), 3 times…`);
  const inProcessRuns = await inProcessLoop(images.map((image) => image.bytes), config, 3);
  const inProcessSeconds = percentile(inProcessRuns, 50);

  const service = await startService(setup);
  const { api, adminKey } = service;
  try {
    // The warm-up's robot is in the same store: the timed run starts with the store's collections made.
    const tenant = await createTenant(service, 'Bench');
    const warmUpDeviceKey = await addDevice(service, tenant.storeId, 'warm-up');

    console.log('queued pipeline: warming up the workers…');
    const warmUp = images.slice(0, 6);
    const warmUpFailed = (await uploadAndWait(api, warmUpDeviceKey, warmUp, warmUp.length)).failed;
    console.log(`queued pipeline over ${images.length} images (api + ${workerGroups(config.PIPELINE_PROCESSES).length} worker processes)…`);
    // Once the warm-up shows in the published metrics, so that none of it counts in the run.
    const stagesBefore = await stageDurations(api, adminKey, new Map(), warmUp.length - warmUpFailed);
    const cpuBefore = cpuByPart();
    const benchCpu = process.cpuUsage();
    const started = performance.now();
    const { latencies, failed } = await uploadAndWait(api, tenant.deviceKey, images, Number(args['batch-size']));
    const pipelineSeconds = (performance.now() - started) / 1000;
    const cpu = cpuSpent(cpuBefore, cpuByPart());
    const benchUsed = process.cpuUsage(benchCpu);
    cpu.set('bench client', (benchUsed.user + benchUsed.system) / 1000);

    const rows = [
      ['in-process loop (median of 3)', images.length, inProcessSeconds, images.length / inProcessSeconds],
      ['queued pipeline', images.length, pipelineSeconds, images.length / pipelineSeconds],
    ] as const;
    console.log('\n| mode | images | seconds | images/s |\n|---|---:|---:|---:|');
    for (const [mode, count, seconds, rate] of rows) console.log(`| ${mode} | ${count} | ${seconds.toFixed(2)} | ${rate.toFixed(2)} |`);
    console.log(
      `\nintake POST /v1/captures (${args['batch-size']} images each): p50 ${percentile(latencies, 50).toFixed(0)} ms, p95 ${percentile(latencies, 95).toFixed(0)} ms; failed captures: ${failed}`,
    );
    const rates = inProcessRuns.map((seconds) => (images.length / seconds).toFixed(1)).join(', ');
    console.log(`in-process runs: ${rates} images/s`);
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
    await service.stop();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
