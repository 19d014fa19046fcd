/**
 * Runs the named workers in this process: `npm run worker -- vision match` (no names: all of them).
 * SIGTERM/SIGINT: stop taking jobs, let active ones finish, close connections; a second signal exits at once.
 * Workers that load models (vision, interactive) run on the active pack; when a reembed
 * switches it, the process drains the same way and exits with RESTART_EXIT_CODE to come back on the
 * new pack (the supervisor of `npm start` restarts it at once; under Docker use a restart policy).
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Worker } from 'bullmq';
import { loadConfig } from '../src/config.js';
import { publishRegistry } from '../src/metrics/published-registry.js';
import { PIPELINE_QUEUES, type PipelineQueue } from '../src/queue/contract.js';
import { startPipelineWorker, type PipelineDefinition } from '../src/queue/pipeline-worker.js';
import { startHousekeeping, type Housekeeping } from '../src/services/housekeeping.js';
import { finishPendingVectorMoves } from '../src/services/identity.js';
import { purgeProcessedImages, purgeStaleVisitors } from '../src/services/retention.js';
import { sweepStuckCaptures } from '../src/services/sweeper.js';
import { activePack } from '../src/storage/settings.js';
import { RESTART_EXIT_CODE } from '../src/supervisor.js';
import { aggregateStage } from './aggregate.js';
import { openWorkerContext, workerDeps, type WorkerContext } from './context.js';
import { startInteractiveWorker } from './interactive.js';
import { matchStage } from './match.js';
import { startOperationsWorker } from './operations.js';
import { startReembedWorker } from './reembed.js';
import { visionStage } from './vision.js';
import { startWebhookWorker } from './webhooks.js';

/** What a worker process can run: the pipeline queues, the other queues, and `maintenance` (the sweeper and retention timers). */
export const WORKER_NAMES = [...PIPELINE_QUEUES, 'interactive', 'reembed', 'webhooks', 'operations', 'maintenance'] as const;
export type WorkerName = (typeof WORKER_NAMES)[number];

/** Workers whose models or collections are those of the active pack: their process restarts when it changes. */
export const PACK_BOUND_WORKERS: readonly WorkerName[] = ['vision', 'interactive'];

const STAGED_FILE_MAX_AGE_MS = 24 * 3600_000;

const pipelineStages: { [Q in PipelineQueue]: (context: WorkerContext) => PipelineDefinition<Q> | Promise<PipelineDefinition<Q>> } = {
  vision: visionStage,
  match: matchStage,
  aggregate: aggregateStage,
};

/** The sweeper and retention, on timers (see services/housekeeping.ts). */
export function startMaintenance(context: WorkerContext): Housekeeping {
  const { config, db, logger } = context;
  return startHousekeeping({ db, databaseName: config.databaseName, logger }, [
    { name: 'sweep', everyMs: config.SWEEP_INTERVAL_MS, run: () => sweepStuckCaptures(context, { staleMs: config.SWEEP_STALE_MS, lostMs: config.SWEEP_LOST_MS }) },
    { name: 'identity-vectors', everyMs: config.SWEEP_INTERVAL_MS, run: () => finishPendingVectorMoves(context) },
    {
      name: 'retention',
      everyMs: config.RETENTION_INTERVAL_MS,
      run: async () => ({
        imagesDeleted: config.KEEP_IMAGES ? 0 : await purgeProcessedImages(context, config.FAILED_IMAGE_RETENTION_DAYS),
        visitorsPurged: await purgeStaleVisitors(context, config.VISITOR_RETENTION_DAYS),
        // An upload takes seconds to stage and record: a day-old staged file was left by a crash.
        stagedFilesDeleted: await context.blobs.sweepStaged(STAGED_FILE_MAX_AGE_MS),
      }),
    },
  ]);
}

/** How long `close()` waits for active jobs before giving up on them (they come back as stalled and are retried). */
export const DRAIN_DEADLINE_MS = 25_000;

/**
 * `close()` stops taking jobs and waits for active ones, at most `drainMs`. It must end even when
 * Redis is down: BullMQ's Worker.close() waits for its blocking connection to end, which a
 * connection that is reconnecting never does (taskforcesh/bullmq#4656). Returns whether it drained.
 */
export type RunningWorkers = { readonly workers: Worker[]; close(options?: { drainMs?: number }): Promise<boolean> };

export async function startWorkers(names: readonly WorkerName[], context: WorkerContext): Promise<RunningWorkers> {
  const workers: Worker[] = [];
  let maintenance: Housekeeping | undefined;
  for (const name of names) {
    if (name === 'interactive') workers.push(await startInteractiveWorker(context));
    else if (name === 'reembed') workers.push(await startReembedWorker(context));
    else if (name === 'webhooks') workers.push(startWebhookWorker(context));
    else if (name === 'operations') workers.push(startOperationsWorker(context));
    else if (name === 'maintenance') maintenance = startMaintenance(context);
    else {
      const definition = (await pipelineStages[name](context)) as PipelineDefinition<PipelineQueue>;
      workers.push(
        startPipelineWorker(definition, { ...workerDeps(context), queues: context.queues, lifecycle: context.lifecycle, metrics: context.metrics, lockMs: context.config.JOB_LOCK_MS }),
      );
    }
  }
  return {
    workers,
    async close({ drainMs = DRAIN_DEADLINE_MS } = {}) {
      const drained = Promise.all([...workers.map((worker) => worker.close()), maintenance?.stop()]).then(() => true);
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), drainMs)));
      const done = await Promise.race([drained, deadline]);
      clearTimeout(timer);
      if (!done) context.logger.warn({ drainMs }, 'workers did not drain in time (Redis unreachable?): their active jobs will be retried as stalled');
      return done;
    },
  };
}

/**
 * Lowers this process's CPU priority when it runs batch work only. On Linux niceness belongs to each
 * thread and is inherited by the threads it starts, and libuv's pool already runs by now, so every
 * thread listed in /proc/self/task is lowered; elsewhere the call applies to the whole process.
 *
 * Thread niceness only ranks threads of one scheduling group, though. With autogroups on (Linux's
 * default on most distributions, `/proc/sys/kernel/sched_autogroup_enabled`) every session is such
 * a group and the groups share the CPU equally whatever their threads' niceness: `npm start` runs
 * each worker in a session of its own, so a worker at nice 10 got as much CPU as the intake API.
 * A session leader therefore also lowers its group (`/proc/self/autogroup`); a worker started
 * inside someone else's session (a terminal's) leaves that session's group alone.
 *
 * Returns why it could not, if so: a worker runs at normal priority rather than not at all.
 */
export function deprioritiseBatchWork(names: readonly WorkerName[], nice: number): string | undefined {
  if (nice === 0 || names.includes('interactive')) return undefined;
  const threads = fs.existsSync('/proc/self/task') ? fs.readdirSync('/proc/self/task').map(Number) : [0];
  for (const thread of threads) {
    try {
      os.setPriority(thread, Math.max(os.getPriority(thread), nice));
    } catch (error) {
      // A short-lived thread may have exited since the listing.
      if ((error as { info?: { code?: string } }).info?.code === 'ESRCH') continue;
      return `could not lower the priority of thread ${thread}: ${(error as Error).message}`;
    }
  }
  return lowerOwnAutogroup(nice);
}

/** The session id of this process, from /proc/self/stat (after the command name, which may hold spaces). */
function sessionId(): number | undefined {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
}

function lowerOwnAutogroup(nice: number): string | undefined {
  const autogroup = '/proc/self/autogroup';
  if (!fs.existsSync(autogroup) || sessionId() !== process.pid) return undefined;
  try {
    const current = Number(/nice (-?\d+)/.exec(fs.readFileSync(autogroup, 'utf8'))?.[1] ?? 0);
    if (current < nice) fs.writeFileSync(autogroup, String(nice));
    return undefined;
  } catch (error) {
    return `could not lower the priority of this session's scheduling group: ${(error as Error).message}`;
  }
}

export function parseWorkerNames(args: string[]): WorkerName[] {
  if (args.length === 0) return [...WORKER_NAMES];
  const unknown = args.filter((arg) => !(WORKER_NAMES as readonly string[]).includes(arg));
  if (unknown.length > 0) throw new Error(`unknown worker ${unknown.join(', ')}; choose from ${WORKER_NAMES.join(', ')}`);
  return args as WorkerName[];
}

async function main(): Promise<void> {
  const names = parseWorkerNames(process.argv.slice(2));
  const config = loadConfig();
  // Signals are handled from the start: one that arrives while the models load exits cleanly
  // (there is nothing to drain yet) instead of killing the process by default.
  let stopping = false;
  let stopRunning: ((reason: string, code: number) => Promise<void>) | undefined;
  const stop = async (reason: string, code = 0) => {
    if (stopping) process.exit(1);
    stopping = true;
    if (!stopRunning) process.exit(code);
    await stopRunning(reason, code);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  const reniceFailure = deprioritiseBatchWork(names, config.BATCH_WORKER_NICE);
  const context = await openWorkerContext(config, `worker:${names.join('+')}`);
  if (reniceFailure) context.logger.warn(reniceFailure);
  const workers = await startWorkers(names, context);
  publishRegistry(context.queues.connection, context.config.QUEUE_PREFIX, names.join('+'), context.metrics.registry);
  context.logger.info({ workers: names, pack: context.config.MODEL_PACK }, 'workers started');
  process.send?.({ ready: true });
  stopRunning = async (reason, code) => {
    clearInterval(watch);
    context.logger.info({ reason }, 'draining: finishing active jobs');
    const drained = await workers.close();
    // Closing the connections would wait for a Redis that did not let the workers drain.
    if (drained) await context.close();
    process.exit(code);
  };

  const watch = setInterval(() => {
    if (stopping || !names.some((name) => PACK_BOUND_WORKERS.includes(name))) return;
    activePack(context.db, config.MODEL_PACK).then(
      (pack) => {
        if (pack === context.config.MODEL_PACK || stopping) return;
        context.logger.info({ from: context.config.MODEL_PACK, to: pack }, 'active model pack changed: restarting on it');
        void stop('pack change', RESTART_EXIT_CODE);
      },
      (error) => context.logger.warn({ err: (error as Error).message }, 'could not read the active pack'),
    );
  }, config.PACK_WATCH_MS);
  watch.unref();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error(`worker failed to start: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  });
}
