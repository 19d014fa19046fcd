/**
 * `npm run bench:pipeline [-- --blobs disk|s3] [--s3-latency MS] [--cost | --intake] [--quick] [--dataset DIR] [--limit N] [--warm-up N] [--rounds N]`:
 * the whole queued service (HTTP intake, every stage, as `npm start` runs them) against a plain
 * in-process loop over the same models and images. Needs MariaDB and Redis; starts Chroma itself,
 * and with `--blobs s3` an S3 test server (scripts/s3-server.ts) that stands in for the object store;
 * `--s3-latency MS` delays each of its answers, as a store across a network would.
 *
 * Two scenarios, both by default:
 * - cost (`--cost` alone): images/s and CPU per image of every service process over the timed run,
 *   read by pid from /proc, against the in-process loop's (scripts/process-cpu.ts);
 * - intake (`--intake` alone): robots uploading on a schedule while the pipeline is saturated
 *   (scripts/bench-intake.ts).
 *
 * Both sides are measured warm, as a long-running service is: the in-process loop after its
 * two-thread passes, the service after a warm-up pass over the same images (`--warm-up N`, default
 * all of them) in a tenant of its own, so the timed run does the same work as a cold one (every
 * face a new visitor) with the JavaScript already compiled. Until 2026-12-05 the service had a
 * 6-image warm-up, and V8 was still optimising its code during the timed run.
 *
 * The cost scenario times `--rounds N` (3; 1 with `--quick`) queued runs, each in a tenant of its
 * own, with a one-thread pass of the loop before the first and after each: a round's baseline is
 * the mean of the passes either side of it. This machine's speed drifts by a quarter within
 * minutes, so one round's ratios range widely; the headline ratios are the rounds' medians.
 *
 * The service is driven through its public HTTP API only, and its processes are told apart by the
 * supervisor's names for its children and their pids, never by queue names.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../src/config.js';
import { imageLimits, prepareImage } from '../src/imaging/prepare.js';
import type { SupervisedService } from '../src/service.js';
import { createDescriber, createDetector } from '../src/vision/index.js';
import { distinctPhotos, printIntake, runIntake } from './bench-intake.js';
import { defaultDataset, listPhotos } from './dataset.js';
import { BENCH_HELPER, cpuSpentByKind, readServiceCpu, sharedServicePids } from './process-cpu.js';
import { createTenant, prepareService, startService, uploadAndWait, type RunningService, type Upload } from './service-harness.js';
import { startS3ServerProcess } from './s3-server.js';
import { percentile } from './stats.js';

const { values: args } = parseArgs({
  options: {
    dataset: { type: 'string', default: process.env.FACEPERKS_DATASET ?? defaultDataset() },
    limit: { type: 'string' },
    'batch-size': { type: 'string', default: '20' },
    blobs: { type: 'string', default: 'disk' },
    's3-latency': { type: 'string', default: '0' },
    cost: { type: 'boolean', default: false },
    intake: { type: 'boolean', default: false },
    robots: { type: 'string', default: '50' },
    seconds: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'warm-up': { type: 'string' },
    rounds: { type: 'string' },
  },
});

/** `--quick`: a look during development (fewer images, a shorter intake window), not figures to quote. */
const QUICK = { limit: 40, seconds: 8 };
const DEFAULT_INTAKE_SECONDS = 30;

/** The pipeline's benchmark set: the dataset's JPEG, PNG and WebP photos (robots send those). */
const CAMERA_FORMAT = /\.(jpe?g|png|webp)$/i;

/** The supervisor's name for the pipeline processes (`pipeline-1`, `pipeline-2`, …), numbers dropped. */
const PIPELINE_KIND = 'pipeline';
const S3_KIND = 's3 server';

/** Workers publish their metrics this often (src/metrics/published-registry.ts); a little more. */
const METRICS_SETTLE_MS = 6000;

type Pass = { seconds: number; cpuMs: number };

/** `passes` timed passes of a plain loop over the images (after a warm-up), with the CPU this process spent in each. */
async function inProcessLoop(images: Buffer[], config: Config, threads: number, passes: number): Promise<Pass[]> {
  const options = { modelsDir: config.modelsDir, pack: config.MODEL_PACK, threads };
  const detector = await createDetector({ ...options, detectThreshold: config.DETECT_THRESHOLD });
  const describer = await createDescriber(options);
  const limits = imageLimits(config);
  const run = async (bytes: Buffer) => {
    const prepared = await prepareImage(bytes, limits);
    await describer.describe(prepared.image, await detector.detect(prepared.image));
  };
  for (const bytes of images.slice(0, 5)) await run(bytes);
  const results: Pass[] = [];
  for (let i = 0; i < passes; i++) {
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (const bytes of images) await run(bytes);
    const used = process.cpuUsage(cpu);
    results.push({ seconds: (performance.now() - started) / 1000, cpuMs: (used.user + used.system) / 1000 });
  }
  await detector.release();
  await describer.release();
  return results;
}

type StageTotals = Map<string, { count: number; seconds: number }>;

/** Successful jobs and their handler seconds per stage label, from the service's own /metrics. */
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
 * The timed run's share of the stage totals: waits (up to 15 s) until every stage seen before the
 * run has counted every capture that finished, since workers publish their metrics every few seconds.
 */
async function stageDurations(base: string, key: string, before: StageTotals, finished: number): Promise<StageTotals> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const after = await stageTotals(base, key);
    const run: StageTotals = new Map(
      [...after].map(([stage, t]) => [stage, { count: t.count - (before.get(stage)?.count ?? 0), seconds: t.seconds - (before.get(stage)?.seconds ?? 0) }]),
    );
    if ([...before.keys()].every((stage) => (run.get(stage)?.count ?? 0) >= finished) || Date.now() > deadline) return run;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * Kinds of the service's processes by pid, as the supervisor names its children (numbers dropped:
 * `pipeline-1` and `pipeline-2` are both `pipeline`), and the S3 server the bench started. Read
 * afresh at each reading: a child restarted in between has a new pid.
 */
function serviceProcessKinds(processes: SupervisedService, s3ServerPid: number | undefined): (pid: number) => string | undefined {
  const kinds = new Map<number, string>();
  for (const name of processes.processNames) {
    const pid = processes.pid(name);
    if (pid !== undefined) kinds.set(pid, name.replace(/-\d+$/, ''));
  }
  if (s3ServerPid !== undefined) kinds.set(s3ServerPid, S3_KIND);
  return (pid) => kinds.get(pid);
}

/** A timed queued run and the one-thread passes of the in-process loop either side of it. */
type Round = { run: QueuedRun; before: Pass; after: Pass };

/** The round's baseline: CPU ms per image of the one-thread loop, the mean of the passes either side of the run. */
const baselineMsPerImage = ({ run, before, after }: Round) => (before.cpuMs + after.cpuMs) / 2 / run.images;

const serviceCpuMs = (run: QueuedRun) => [...run.serviceCpu.values()].reduce((a, b) => a + b, 0);

/** The headline ratios of a round: X and Y against its baseline, R against the two-thread loop's median pass. */
function ratiosOf(round: Round, twoThreadSeconds: number): { x: number; y: number; r: number } {
  const { run } = round;
  const baseline = baselineMsPerImage(round);
  return {
    x: run.serviceCpu.get(PIPELINE_KIND)! / run.images / baseline,
    y: serviceCpuMs(run) / run.images / baseline,
    r: twoThreadSeconds / run.seconds,
  };
}

type QueuedRun = {
  images: number;
  seconds: number;
  failed: number;
  /** Latency of each upload request of the run. */
  uploadMs: number[];
  stages: StageTotals;
  /** CPU milliseconds over the run per kind of service process. */
  serviceCpu: Map<string, number>;
  benchClientCpuMs: number;
  sharedPids: Map<string, number[]>;
};

const portOf = (url: string, defaultPort: number) => Number(new URL(url).port) || defaultPort;

/** The cost scenario's timed run: every image through the service, with the CPU each of its processes spent. */
async function queuedRun(service: RunningService, deviceKey: string, images: Upload[], s3ServerPid: number | undefined): Promise<QueuedRun> {
  const { api, adminKey, config } = service;
  // None of the warm-up may count in the run's stage figures: let every worker publish it first.
  await new Promise((resolve) => setTimeout(resolve, METRICS_SETTLE_MS));
  console.log(`queued pipeline over ${images.length} images (${config.PIPELINE_PROCESSES} pipeline processes)…`);
  const stagesBefore = await stageTotals(api, adminKey);
  const sharedPorts = [portOf(config.REDIS_URL, 6379), portOf(config.DATABASE_URL, 3306)];
  const cpuBefore = readServiceCpu(serviceProcessKinds(service.processes, s3ServerPid), sharedPorts);
  const benchCpu = process.cpuUsage();
  const started = performance.now();
  const { latencies, failed } = await uploadAndWait(api, deviceKey, images, Number(args['batch-size']));
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = readServiceCpu(serviceProcessKinds(service.processes, s3ServerPid), sharedPorts);
  const benchUsed = process.cpuUsage(benchCpu);
  const serviceCpu = cpuSpentByKind(cpuBefore, cpuAfter);
  if (!serviceCpu.has(PIPELINE_KIND)) throw new Error(`none of the supervisor's children is a ${PIPELINE_KIND} process: ${[...serviceCpu.keys()].join(', ')}`);
  const benchClientCpuMs = (benchUsed.user + benchUsed.system) / 1000 + (serviceCpu.get(BENCH_HELPER) ?? 0);
  serviceCpu.delete(BENCH_HELPER);
  const stages = await stageDurations(api, adminKey, stagesBefore, images.length - failed);
  return { images: images.length, seconds, failed, uploadMs: latencies, stages, serviceCpu, benchClientCpuMs, sharedPids: sharedServicePids(cpuAfter) };
}

const perImage = (ms: number, images: number) => (ms / images).toFixed(1);

/**
 * The cost scenario's tables — every round's figures, then the median round's (by X) in detail —
 * and its three headline lines, the rounds' medians (which the maintainers' tools read).
 */
function printCost(rounds: Round[], twoThreads: Pass[], pipelineProcesses: number): void {
  const twoThreadSeconds = percentile(twoThreads.map((pass) => pass.seconds), 50);
  const ratios = rounds.map((round) => ratiosOf(round, twoThreadSeconds));
  const medianOf = (key: 'x' | 'y' | 'r') => percentile(ratios.map((ratio) => ratio[key]), 50);
  const headline = { x: medianOf('x'), y: medianOf('y'), r: medianOf('r') };

  console.log('\n| round | images/s | pipeline processes, CPU ms per image | service | baseline | X | Y | R |\n|---:|---:|---:|---:|---:|---:|---:|---:|');
  rounds.forEach((round, i) => {
    const { run } = round;
    const { x, y, r } = ratios[i];
    const cells = [perImage(run.serviceCpu.get(PIPELINE_KIND)!, run.images), perImage(serviceCpuMs(run), run.images), baselineMsPerImage(round).toFixed(1)];
    console.log(`| ${i + 1} | ${(run.images / run.seconds).toFixed(2)} | ${cells.join(' | ')} | ${x.toFixed(2)} | ${y.toFixed(2)} | ${r.toFixed(2)} |`);
  });

  const round = rounds[ratios.findIndex((ratio) => ratio.x === headline.x)];
  const { run } = round;
  const n = run.images;
  const medianPass = twoThreads.find((pass) => pass.seconds === twoThreadSeconds)!;
  console.log(`\nThe median round (by X), in detail:`);
  console.log('\n| mode | images | seconds | images/s | CPU ms per image |\n|---|---:|---:|---:|---:|');
  const rows: [string, number, number][] = [
    ['in-process loop, 2 threads (median of 3)', twoThreadSeconds, medianPass.cpuMs],
    ['in-process loop, 1 thread, before the queued run', round.before.seconds, round.before.cpuMs],
    ['in-process loop, 1 thread, after it', round.after.seconds, round.after.cpuMs],
    ['queued pipeline (whole service)', run.seconds, serviceCpuMs(run)],
  ];
  for (const [mode, seconds, cpuMs] of rows) console.log(`| ${mode} | ${n} | ${seconds.toFixed(2)} | ${(n / seconds).toFixed(2)} | ${perImage(cpuMs, n)} |`);
  console.log(`in-process runs, 2 threads: ${twoThreads.map((pass) => (n / pass.seconds).toFixed(1)).join(', ')} images/s`);
  const upload = (p: number) => percentile(run.uploadMs, p).toFixed(0);
  console.log(`uploads of the run (${args['batch-size']} images each): p50 ${upload(50)} ms, p95 ${upload(95)} ms; failed captures: ${run.failed}`);

  console.log('\n| stage | jobs | mean ms per job |\n|---|---:|---:|');
  for (const [stage, { count, seconds }] of run.stages) console.log(`| ${stage} | ${count} | ${count > 0 ? ((seconds / count) * 1000).toFixed(1) : '–'} |`);

  console.log('\n| process | CPU ms per image |\n|---|---:|');
  for (const [kind, ms] of [...run.serviceCpu].sort((a, b) => b[1] - a[1])) {
    const label = kind === PIPELINE_KIND ? `pipeline processes (${pipelineProcesses})` : kind === S3_KIND ? `${S3_KIND} (the object store)` : kind;
    console.log(`| ${label} | ${perImage(ms, n)} |`);
  }
  console.log(`| **service (all of the above)** | ${perImage(serviceCpuMs(run), n)} |`);
  console.log(`| bench client (not the service) | ${perImage(run.benchClientCpuMs, n)} |`);
  console.log(`| in-process loop, 1 thread, mean of before and after (the baseline) | ${baselineMsPerImage(round).toFixed(1)} |`);
  const shared = [...run.sharedPids].map(([kind, pids]) => `${kind.replace(' (shared)', '')} ${pids.join(', ')}`).join(', ');
  console.log(
    `MariaDB and Redis are the machine's shared services, measured by pid (those listening on the service's ports: ${shared}) over the timed run: anything else using them meanwhile counts too, so run on a quiet machine.`,
  );

  const of = rounds.length === 1 ? '' : ` (median of ${rounds.length} rounds)`;
  console.log(`\nworker/in-process CPU per image: ${headline.x.toFixed(2)}${of}`);
  console.log(`service/in-process CPU per image: ${headline.y.toFixed(2)}${of}`);
  console.log(`pipeline/in-process ratio: ${headline.r.toFixed(2)}${of}`);
}

async function main(): Promise<void> {
  if (args.blobs !== 'disk' && args.blobs !== 's3') throw new Error(`--blobs is disk or s3, not ${args.blobs}`);
  const s3LatencyMs = Number(args['s3-latency']);
  if (!(Number.isInteger(s3LatencyMs) && s3LatencyMs >= 0)) throw new Error('--s3-latency is a whole number of milliseconds');
  if (s3LatencyMs > 0 && args.blobs !== 's3') throw new Error('--s3-latency needs --blobs s3');
  const runCost = args.cost || !args.intake;
  const runIntakeScenario = args.intake || !args.cost;
  const files = listPhotos(args.dataset).filter((file) => CAMERA_FORMAT.test(file));
  if (files.length === 0) throw new Error(`no images under ${args.dataset}`);
  const limit = Number(args.limit ?? (args.quick ? QUICK.limit : 0));
  const photos = await Promise.all(files.map(async (file) => ({ name: path.basename(file), bytes: await fs.readFile(file) })));
  const images = limit > 0 ? photos.slice(0, limit) : photos;
  const intake = { robots: Number(args.robots), seconds: Number(args.seconds ?? (args.quick ? QUICK.seconds : DEFAULT_INTAKE_SECONDS)) };
  if (!(Number.isInteger(intake.robots) && intake.robots > 0 && Number.isInteger(intake.seconds) && intake.seconds > 0)) {
    throw new Error('--robots and --seconds are positive whole numbers');
  }

  // In a process of its own, so that its CPU counts in the service (it stands in for the object
  // store) rather than in the bench client.
  const s3 = args.blobs === 's3' ? await startS3ServerProcess({ latencyMs: s3LatencyMs }) : undefined;
  const setup = prepareService('bench', s3?.env ?? {});
  let service: RunningService | undefined;
  try {
    const { config } = setup;
    const oneThreadPass = async () => (await inProcessLoop(images.map((image) => image.bytes), config, 1, 1))[0];
    const rounds = Number(args.rounds ?? (args.quick ? 1 : 3));
    if (!(Number.isInteger(rounds) && rounds > 0)) throw new Error('--rounds is a positive whole number');
    let twoThreads: Pass[] | undefined;
    let oneThreadBefore: Pass | undefined;
    if (runCost) {
      console.log(`in-process loop over ${images.length} images (${config.MODEL_PACK} pack, 1 process): 2 threads 3 times, then 1 thread once (and once more after each of ${rounds} queued runs)…`);
      twoThreads = await inProcessLoop(images.map((image) => image.bytes), config, 2, 3);
      oneThreadBefore = await oneThreadPass();
    }
    let robotPhotos: Buffer[] = [];
    if (runIntakeScenario) {
      console.log(`re-encoding ${intake.robots * intake.seconds} distinct photos for the intake's robots…`);
      robotPhotos = await distinctPhotos(
        photos.map((photo) => photo.bytes),
        intake.robots * intake.seconds,
      );
    }

    const latency = s3LatencyMs > 0 ? `, each answer delayed ${s3LatencyMs} ms` : '';
    console.log(`blobs: ${args.blobs === 's3' ? `S3 (${s3!.env.BLOB_URL} on ${s3!.env.AWS_ENDPOINT_URL_S3}${latency})` : 'local disk'}`);
    service = await startService(setup);
    const warmUp = images.slice(0, Number(args['warm-up'] ?? images.length));
    console.log(`queued pipeline: warming up the workers over ${warmUp.length} images…`);
    const warmUpTenant = await createTenant(service, 'Bench warm-up');
    await uploadAndWait(service.api, warmUpTenant.deviceKey, warmUp, Number(args['batch-size']));

    if (twoThreads && oneThreadBefore) {
      const done: Round[] = [];
      let before = oneThreadBefore;
      for (let round = 1; round <= rounds; round++) {
        const tenant = await createTenant(service, `Bench round ${round}`);
        const run = await queuedRun(service, tenant.deviceKey, images, s3?.pid);
        console.log(`round ${round} of ${rounds}: in-process loop, 1 thread, again…`);
        const after = await oneThreadPass();
        done.push({ run, before, after });
        before = after;
      }
      printCost(done, twoThreads, config.PIPELINE_PROCESSES);
    }
    if (runIntakeScenario) {
      const tenant = await createTenant(service, 'Bench intake');
      console.log(`\nintake: queueing a backlog of ${photos.length} captures, then ${intake.robots} robots for ${intake.seconds} s…`);
      printIntake(await runIntake(service, tenant.storeId, photos.map((photo) => photo.bytes), robotPhotos, intake));
    }
  } finally {
    await service?.stop();
    await s3?.stop();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
