/**
 * The consumer side of the queue contract. A stage declares its queue, concurrency and a handler
 * that receives a validated payload and returns the next stage's payload. The machinery here
 * validates, skips superseded runs, enqueues the next stage with a deterministic job id, and turns
 * permanent failures (bad input, or the last attempt of a transient fault) into a failed capture.
 */
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { PipelineMetrics } from '../metrics/pipeline-metrics.js';
import { NEXT_STAGE, payloadSchemas, stageJobId, type Stage, type StagePayload } from './contract.js';
import type { Queues } from './queues.js';

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

type NextPayload<S extends Stage> = (typeof NEXT_STAGE)[S] extends infer N
  ? N extends Stage
    ? StagePayload<N>
    : void
  : never;

/** True while running a job's last allowed attempt: a failure now is final. */
export function isLastAttempt(job: Job): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

export type StageHandler<S extends Stage> = (payload: StagePayload<S>, job: Job) => Promise<NextPayload<S>>;

/** What the machinery needs to know about a capture, kept behind a small interface. */
export interface CaptureProgress {
  /** Marks the capture processing at this stage; returns false when the job belongs to an older run or the capture is final/gone. */
  begin(captureId: string, run: number, stage: Stage): Promise<boolean>;
  fail(captureId: string, run: number, code: string, message: string): Promise<void>;
}

export type StageDefinition<S extends Stage> = {
  stage: S;
  concurrency: number;
  handle: StageHandler<S>;
};

export function startStageWorker<S extends Stage>(
  definition: StageDefinition<S>,
  deps: { queues: Queues; progress: CaptureProgress; logger: Logger; prefix: string; metrics: PipelineMetrics; lockMs: number },
): Worker {
  const { stage } = definition;
  const next = NEXT_STAGE[stage];
  const worker = new Worker(
    stage,
    async (job: Job) => {
      const parsed = payloadSchemas[stage].safeParse(job.data);
      if (!parsed.success) throw new UnrecoverableError(`invalid ${stage} payload: ${parsed.error.issues[0]?.message}`);
      const payload = parsed.data as StagePayload<S>;
      const log = deps.logger.child({ stage, captureId: payload.captureId, run: payload.run, jobId: job.id });
      if (!(await deps.progress.begin(payload.captureId, payload.run, stage))) {
        log.info('superseded or final capture, skipped');
        return { skipped: true };
      }
      const started = performance.now();
      const observe = (outcome: 'ok' | 'retry' | 'failed') =>
        deps.metrics.stageDuration.observe({ stage, outcome }, (performance.now() - started) / 1000);
      try {
        const result = await definition.handle(payload, job);
        if (next) {
          const nextPayload = result as unknown as StagePayload<Stage>;
          await deps.queues.queue(next).add(next, nextPayload, { jobId: stageJobId(next, nextPayload) });
        }
        observe('ok');
        log.debug({ ms: Math.round(performance.now() - started) }, 'stage done');
        return { ms: performance.now() - started };
      } catch (error) {
        const err = error as Error;
        const permanent = err instanceof PermanentStageError;
        const lastAttempt = isLastAttempt(job);
        observe(permanent || lastAttempt ? 'failed' : 'retry');
        if (permanent || lastAttempt) {
          const code = permanent ? err.code : `${stage}_failed`;
          log.warn({ code, err: err.message }, 'capture failed');
          await deps.progress.fail(payload.captureId, payload.run, code, err.message.slice(0, 480));
          throw permanent ? new UnrecoverableError(`${code}: ${err.message}`) : err;
        }
        log.warn({ err: err.message, attempt: job.attemptsMade + 1 }, 'transient failure, will retry');
        throw err;
      }
    },
    {
      connection: deps.queues.connection,
      prefix: deps.prefix,
      concurrency: definition.concurrency,
      // A worker killed mid-job leaves a lock that expires; the job is then retried elsewhere.
      lockDuration: deps.lockMs,
      stalledInterval: deps.lockMs,
      maxStalledCount: 2,
      autorun: true,
    },
  );
  worker.on('error', (error) => deps.logger.error({ stage, err: error.message }, 'worker error'));
  return worker;
}
