/**
 * Runs the named workers in this process: `npm run worker -- detect embed` (no names: all of them).
 * SIGTERM/SIGINT: stop taking jobs, let active ones finish, close connections; a second signal exits at once.
 */
import type { Worker } from 'bullmq';
import { STAGES, type Stage } from '../src/queue/contract.js';
import { startStageWorker, type StageDefinition } from '../src/queue/stage-worker.js';
import { aggregateStage } from './aggregate.js';
import { createWorkerContext, type WorkerContext } from './context.js';
import { detectStage } from './detect.js';
import { embedStage } from './embed.js';
import { startInteractiveWorker } from './interactive.js';
import { startMaintenanceWorker } from './maintenance.js';
import { matchStage } from './match.js';
import { publishRegistry } from '../src/metrics/published-registry.js';
import { preprocessStage } from './preprocess.js';

export const WORKER_NAMES = [...STAGES, 'interactive', 'maintenance'] as const;
export type WorkerName = (typeof WORKER_NAMES)[number];

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

export function parseWorkerNames(args: string[]): WorkerName[] {
  if (args.length === 0) return [...WORKER_NAMES];
  const unknown = args.filter((arg) => !(WORKER_NAMES as readonly string[]).includes(arg));
  if (unknown.length > 0) throw new Error(`unknown worker ${unknown.join(', ')}; choose from ${WORKER_NAMES.join(', ')}`);
  return args as WorkerName[];
}

async function main(): Promise<void> {
  const names = parseWorkerNames(process.argv.slice(2));
  const context = createWorkerContext(undefined, `worker:${names.join('+')}`);
  const workers = await startWorkers(names, context);
  publishRegistry(context.queues.connection, context.config.QUEUE_PREFIX, names.join('+'), context.metrics.registry);
  context.logger.info({ workers: names }, 'workers started');
  process.send?.({ ready: true });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    context.logger.info({ signal }, 'draining: finishing active jobs');
    await Promise.all(workers.map((worker) => worker.close()));
    await context.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error(`worker failed to start: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  });
}
