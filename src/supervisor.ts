/** Keeps child processes alive: restarts a crashed one with exponential backoff, stops all on request. */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Logger } from 'pino';
import { STAGES } from './queue/contract.js';

/** A supervised worker process: its name (logs, signals) and the workers it runs. */
export type WorkerGroup = { name: string; workers: string[] };

/** Workers of each pipeline process: every stage, each still its own queue and BullMQ worker. */
export const PIPELINE_WORKERS = [...STAGES, 'maintenance', 'webhooks'];

/**
 * `npm start`'s worker processes: `pipelineProcesses` identical processes running every stage, then
 * interactive (enrolment and identify, at normal priority) and reembed (a pack migration loads a
 * second set of models and must not slow enrolment). On two cores, two processes of every stage
 * spent about 11 % less CPU per image in `npm run bench:pipeline` than one process per stage (eight
 * processes contending for two cores, each job's hand-off a wake-up of another process), and two
 * one-thread inference processes are the vision layer's fastest layout.
 */
export function workerGroups(pipelineProcesses: number): WorkerGroup[] {
  return [
    ...Array.from({ length: pipelineProcesses }, (_, i) => ({ name: `pipeline-${i + 1}`, workers: PIPELINE_WORKERS })),
    { name: 'interactive', workers: ['interactive'] },
    { name: 'reembed', workers: ['reembed'] },
  ];
}

/**
 * Exit status of a worker process that asks to be restarted (the active model pack changed): the
 * supervisor restarts it at once without counting a crash; under Docker or systemd any restart
 * policy other than "no" does the same, since the status is non-zero.
 */
export const RESTART_EXIT_CODE = 75;

/** A supervised child: a script run through tsx, with extra Node flags. */
export type ChildSpec = { name: string; script: string; args: string[]; nodeFlags?: string[] };

/**
 * Node flags of worker processes. A 64 MB young generation: each image allocates megabytes of
 * short-lived pixels and tensors, and with V8's default (16 MB) scavenges cost the vision workers
 * 10-20% of their throughput in `npm run bench:vision`. `npm run worker` passes the same flag.
 */
export const WORKER_NODE_FLAGS = ['--max-semi-space-size=64'];

/** The whole service as `npm start` runs it: the API and one process per worker group. */
export function serviceSpecs(root: string, config: { PIPELINE_PROCESSES: number }): ChildSpec[] {
  return [
    { name: 'api', script: path.join(root, 'src/api/main.ts'), args: [] },
    ...workerGroups(config.PIPELINE_PROCESSES).map((group) => ({
      name: group.name,
      script: path.join(root, 'workers/runner.ts'),
      args: group.workers,
      nodeFlags: WORKER_NODE_FLAGS,
    })),
  ];
}

const MAX_BACKOFF_MS = 30_000;
/** A child that stayed up this long is considered healthy again: its backoff resets. */
const HEALTHY_AFTER_MS = 60_000;

export class Supervisor {
  private readonly children = new Map<string, ChildProcess>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopping = false;

  constructor(
    private readonly cwd: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly logger: Logger,
  ) {}

  start(spec: ChildSpec, crashes = 0): void {
    const startedAt = Date.now();
    const child = fork(spec.script, spec.args, { cwd: this.cwd, env: this.env, execArgv: ['--import', 'tsx', ...(spec.nodeFlags ?? [])], stdio: 'inherit' });
    this.children.set(spec.name, child);
    child.once('exit', (code, signal) => {
      this.children.delete(spec.name);
      if (this.stopping) return;
      if (code === RESTART_EXIT_CODE) {
        this.logger.info({ child: spec.name }, 'child process asked to be restarted; restarting');
        this.start(spec, 0);
        return;
      }
      const recent = Date.now() - startedAt < HEALTHY_AFTER_MS ? crashes + 1 : 1;
      const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (recent - 1));
      this.logger.error({ child: spec.name, code, signal, restartInMs: delay }, 'child process exited; restarting');
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (!this.stopping) this.start(spec, recent);
      }, delay);
      this.timers.add(timer);
    });
  }

  /** SIGTERM to every child, SIGKILL to those still alive after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const timer of this.timers) clearTimeout(timer);
    const exits = [...this.children.values()].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
          child.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
  }

  /** Sends `signal` to one child (operators and tests use it to drain or crash a worker). */
  signal(name: string, signal: NodeJS.Signals): boolean {
    return this.children.get(name)?.kill(signal) ?? false;
  }

  killAll(): void {
    for (const child of this.children.values()) child.kill('SIGKILL');
  }
}
