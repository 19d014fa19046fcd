/**
 * The pipeline queues' consumer machinery. A pipeline handler receives its validated payload and a
 * `step` function that runs each named stage (timed per stage), and returns the next queue's
 * payload; the machinery hands it on with a deterministic job id, and decides what a failure means:
 * - bad input (PermanentStageError) fails the capture with its reason, without retries;
 * - anything else is transient (Redis, MySQL, Chroma, the blob store): retried with capped
 *   exponential backoff, and when the retries run out the capture stays open for the sweeper.
 *   An outage delays a capture; it never fails it.
 */
import { UnrecoverableError, type Job, type Worker } from 'bullmq';
import type { PipelineMetrics } from '../metrics/pipeline-metrics.js';
import type { CaptureLifecycle } from '../storage/capture-lifecycle.js';
import { STAGES_OF_QUEUE, type JobPayload, type PipelineQueue, type Stage } from './contract.js';
import type { Queues } from './queues.js';
import { startQueueWorker, type WorkerDeps } from './worker.js';

/** Bad input that no retry can fix; `code` ends up in the capture's error_code. */
export class PermanentStageError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'PermanentStageError';
  }
}

export const NEXT_QUEUE = { vision: 'match', match: 'aggregate', aggregate: null } as const satisfies Record<PipelineQueue, PipelineQueue | null>;

type NextPayload<Q extends PipelineQueue> = (typeof NEXT_QUEUE)[Q] extends PipelineQueue ? JobPayload<(typeof NEXT_QUEUE)[Q]> : null;

/**
 * `skipped`: the job belongs to a superseded run or a finished capture, and changed nothing.
 * `next: null`: the capture ended here (the last stage, or nothing left for the later ones).
 */
export type StageOutcome<Q extends PipelineQueue> = { skipped: true } | { skipped?: false; next: NextPayload<Q> | null };

export type StepRunner = <T>(stage: Stage, work: () => Promise<T>) => Promise<T>;

export type PipelineHandler<Q extends PipelineQueue> = (payload: JobPayload<Q>, step: StepRunner, job: Job) => Promise<StageOutcome<Q>>;

export type PipelineDefinition<Q extends PipelineQueue> = { queue: Q; concurrency: number; handle: PipelineHandler<Q> };

/** True while running a job's last allowed attempt. */
export function isLastAttempt(job: Job): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

export function startPipelineWorker<Q extends PipelineQueue>(
  definition: PipelineDefinition<Q>,
  deps: WorkerDeps & { queues: Queues; lifecycle: CaptureLifecycle; metrics: PipelineMetrics; lockMs: number },
): Worker {
  const { queue } = definition;
  const next = NEXT_QUEUE[queue] as PipelineQueue | null;
  const process = async (payload: JobPayload<Q>, job: Job) => {
    const log = deps.logger.child({ queue, captureId: payload.captureId, run: payload.run, jobId: job.id });
    let stage: Stage = STAGES_OF_QUEUE[queue][0];
    let started = performance.now();
    const observe = (outcome: 'ok' | 'retry' | 'gave_up' | 'failed') =>
      deps.metrics.stageDuration.observe({ stage, outcome }, (performance.now() - started) / 1000);
    const step: StepRunner = async (name, work) => {
      stage = name;
      started = performance.now();
      const result = await work();
      observe('ok');
      return result;
    };
    try {
      const outcome = await definition.handle(payload, step, job);
      if (outcome.skipped) {
        log.info('superseded run or finished capture, skipped');
        return { skipped: true };
      }
      if (next && outcome.next) await deps.queues.enqueue(next, outcome.next as JobPayload<typeof next>);
      return { skipped: false };
    } catch (error) {
      const err = error as Error;
      if (err instanceof PermanentStageError) {
        observe('failed');
        log.warn({ stage, code: err.code, err: err.message }, 'capture failed: bad input');
        // If MySQL is down this throws a transient error instead, and the job is retried.
        await deps.lifecycle.fail(payload.captureId, payload.run, err.code, err.message);
        throw new UnrecoverableError(`${err.code}: ${err.message}`);
      }
      const gaveUp = isLastAttempt(job);
      observe(gaveUp ? 'gave_up' : 'retry');
      if (gaveUp) log.error({ stage, err: err.message }, 'transient fault outlasted the retries: the capture stays open and the sweeper restarts it');
      else log.warn({ stage, err: err.message, attempt: job.attemptsMade + 1 }, 'transient fault, will retry');
      throw new Error(`${stage}: ${err.message}`);
    }
  };
  return startQueueWorker(queue, { [queue]: process } as never, deps, {
    concurrency: definition.concurrency,
    // A worker killed mid-job leaves a lock that expires; the job is then retried elsewhere.
    lockDuration: deps.lockMs,
    stalledInterval: deps.lockMs,
    maxStalledCount: 2,
  });
}
