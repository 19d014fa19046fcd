/**
 * Runs the named workers in this process: `npm run worker -- detect embed` (no names: all of them).
 * SIGTERM/SIGINT: stop taking jobs, let active ones finish, close connections; a second signal exits at once.
 * Workers that load models (detect, embed, interactive) run on the active pack; when a reembed
 * switches it, the process drains the same way and exits with RESTART_EXIT_CODE to come back on the
 * new pack (the supervisor of `npm start` restarts it at once; under Docker use a restart policy).
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Worker } from 'bullmq';
import { STAGES, type Stage } from '../src/queue/contract.js';
import { startStageWorker, type StageDefinition } from '../src/queue/stage-worker.js';
import { aggregateStage } from './aggregate.js';
import { loadConfig } from '../src/config.js';
import { activePack } from '../src/storage/settings.js';
import { RESTART_EXIT_CODE } from '../src/supervisor.js';
import { openWorkerContext, type WorkerContext } from './context.js';
import { detectStage } from './detect.js';
import { embedStage } from './embed.js';
import { startInteractiveWorker } from './interactive.js';
import { startMaintenanceWorker } from './maintenance.js';
import { matchStage } from './match.js';
import { publishRegistry } from '../src/metrics/published-registry.js';
import { preprocessStage } from './preprocess.js';
import { startReembedWorker } from './reembed.js';
import { startWebhookWorker } from './webhooks.js';

export const WORKER_NAMES = [...STAGES, 'interactive', 'maintenance', 'reembed', 'webhooks'] as const;
export type WorkerName = (typeof WORKER_NAMES)[number];

/** Workers whose models or collections are those of the active pack: their process restarts when it changes. */
export const PACK_BOUND_WORKERS: readonly WorkerName[] = ['detect', 'embed', 'interactive'];

const stageFactories: { [S in Stage]: (context: WorkerContext) => StageDefinition<S> | Promise<StageDefinition<S>> } = {
  preprocess: preprocessStage,
  detect: detectStage,
  embed: embedStage,
  match: matchStage,
  aggregate: aggregateStage,
};

export async function startWorkers(names: readonly WorkerName[], context: WorkerContext): Promise<Worker[]> {
  const workers: Worker[] = [];
  for (const name of names) {
    if (name === 'interactive') workers.push(await startInteractiveWorker(context));
    else if (name === 'maintenance') workers.push(await startMaintenanceWorker(context));
    else if (name === 'reembed') workers.push(await startReembedWorker(context));
    else if (name === 'webhooks') workers.push(startWebhookWorker(context));
    else {
      const definition = (await stageFactories[name](context)) as StageDefinition<Stage>;
      workers.push(
        startStageWorker(definition, {
          queues: context.queues,
          progress: context.pipeline,
          logger: context.logger,
          prefix: context.config.QUEUE_PREFIX,
          metrics: context.metrics,
          lockMs: context.config.JOB_LOCK_MS,
        }),
      );
    }
  }
  return workers;
}

/**
 * Lowers this process's CPU priority when it runs batch work only. On Linux niceness belongs to each
 * thread and is inherited by the threads it starts, and libuv's pool already runs by now, so every
 * thread listed in /proc/self/task is lowered; elsewhere the call applies to the whole process.
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
  return undefined;
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
  const reniceFailure = deprioritiseBatchWork(names, config.BATCH_WORKER_NICE);
  const context = await openWorkerContext(config, `worker:${names.join('+')}`);
  if (reniceFailure) context.logger.warn(reniceFailure);
  const workers = await startWorkers(names, context);
  publishRegistry(context.queues.connection, context.config.QUEUE_PREFIX, names.join('+'), context.metrics.registry);
  context.logger.info({ workers: names, pack: context.config.MODEL_PACK }, 'workers started');
  process.send?.({ ready: true });

  let stopping = false;
  const stop = async (reason: string, code = 0) => {
    if (stopping) process.exit(1);
    stopping = true;
    clearInterval(watch);
    context.logger.info({ reason }, 'draining: finishing active jobs');
    await Promise.all(workers.map((worker) => worker.close()));
    await context.close();
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

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
