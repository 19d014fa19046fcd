/** Keeps child processes alive: restarts a crashed one with exponential backoff, stops all on request. */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { PIPELINE_QUEUES } from './queue/contract.js';

/** A supervised worker process: its name (logs, signals) and the workers it runs. */
export type WorkerGroup = { name: string; workers: string[] };

/** Workers of each pipeline process: every pipeline queue, webhooks, operations and the housekeeping timers. */
export const PIPELINE_WORKERS = [...PIPELINE_QUEUES, 'webhooks', 'operations', 'maintenance'];

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

/**
 * A supervised child: a Node module and its arguments, with extra Node flags. A `.ts` module runs
 * through tsx (tests and dev), anything else on plain Node (the compiled service). `quiet` drops its
 * standard output (the local Chroma prints a banner at every start) but keeps its errors.
 */
export type ChildSpec = { name: string; script: string; args: string[]; nodeFlags?: string[]; quiet?: boolean };

/**
 * Node flags of worker processes (`npm run worker` passes the same):
 * - A 64 MB young generation: each image allocates megabytes of short-lived pixels and tensors, and
 *   with V8's default (16 MB) scavenges cost the vision workers 10-20% of their throughput in
 *   `npm run bench:vision`.
 * - An old generation allowed to grow to 4x what survived the last full collection: by V8's own
 *   factor (1.1-1.5x here) a pipeline process ran a full collection every 0.3-0.7 s once warm, and
 *   with the AWS SDK loaded (blobs on S3) they took a fifth of its CPU. 25 % less CPU per image on
 *   S3, no change on disk, about 30 MB more memory per process (docs/benchmarks.md, session 12).
 */
export const WORKER_NODE_FLAGS = ['--max-semi-space-size=64', '--heap-growing-percent=300'];

const thisModule = fileURLToPath(import.meta.url);
/**
 * Where the service's entry points live: the project under tsx or vitest, its compiled copy dist/
 * when this module was compiled (`npm start`). Children run the same kind of code as their supervisor.
 */
export const CODE_ROOT = path.resolve(path.dirname(thisModule), '..');
const CODE_EXTENSION = path.extname(thisModule);

/** The whole service as `npm start` runs it, from the code under `root`: the API and one process per worker group. */
export function serviceSpecs(root: string, config: { PIPELINE_PROCESSES: number }): ChildSpec[] {
  return [
    { name: 'api', script: path.join(root, `src/api/main${CODE_EXTENSION}`), args: [] },
    ...workerGroups(config.PIPELINE_PROCESSES).map((group) => ({
      name: group.name,
      script: path.join(root, `workers/runner${CODE_EXTENSION}`),
      args: group.workers,
      nodeFlags: WORKER_NODE_FLAGS,
    })),
  ];
}

/**
 * When a child that died is started again: after `firstDelayMs`, doubling with each death that
 * follows a short life, up to `maxDelayMs`; a child that stayed up `healthyAfterMs` starts over.
 */
export type RestartPolicy = { firstDelayMs: number; maxDelayMs: number; healthyAfterMs: number };

export const DEFAULT_RESTART_POLICY: RestartPolicy = { firstDelayMs: 1000, maxDelayMs: 30_000, healthyAfterMs: 60_000 };

/** A child that exited without being asked to, and when it will be started again. */
export type ChildExit = { name: string; code: number | null; signal: NodeJS.Signals | null; restartInMs: number };

/** Emits `exit` (a `ChildExit`) each time a child dies unasked. */
export class Supervisor extends EventEmitter<{ exit: [ChildExit] }> {
  private readonly children = new Map<string, ChildProcess>();
  /** Deaths in a row of each child, each after a life shorter than `healthyAfterMs`. */
  private readonly crashes = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopping = false;

  constructor(
    private readonly cwd: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly logger: Logger,
    private readonly policy: RestartPolicy = DEFAULT_RESTART_POLICY,
  ) {
    super();
  }

  start(spec: ChildSpec): void {
    const startedAt = Date.now();
    const child = fork(spec.script, spec.args, {
      cwd: this.cwd,
      env: this.env,
      execArgv: [...(spec.script.endsWith('.ts') ? ['--import', 'tsx'] : []), ...(spec.nodeFlags ?? [])],
      stdio: spec.quiet ? ['ignore', 'ignore', 'inherit', 'ipc'] : 'inherit',
      // A process group of its own: a terminal's Ctrl-C reaches only the supervisor, which stops the
      // children in order. Signalled directly, Chroma would quit before the workers drained, and a
      // worker would take the supervisor's SIGTERM, coming second, as "exit now".
      detached: true,
    });
    this.children.set(spec.name, child);
    child.on('error', (error) => this.logger.error({ child: spec.name, err: error.message }, 'child process error'));
    child.once('exit', (code, signal) => {
      this.children.delete(spec.name);
      if (this.stopping) return;
      if (code === RESTART_EXIT_CODE) {
        this.logger.info({ child: spec.name }, 'child process asked to be restarted; restarting');
        this.crashes.delete(spec.name);
        this.start(spec);
        return;
      }
      const crashes = Date.now() - startedAt < this.policy.healthyAfterMs ? (this.crashes.get(spec.name) ?? 0) + 1 : 1;
      this.crashes.set(spec.name, crashes);
      const restartInMs = Math.min(this.policy.maxDelayMs, this.policy.firstDelayMs * 2 ** (crashes - 1));
      this.logger.error({ child: spec.name, code, signal, restartInMs }, 'child process exited; restarting');
      this.emit('exit', { name: spec.name, code, signal, restartInMs });
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (!this.stopping) this.start(spec);
      }, restartInMs);
      this.timers.add(timer);
    });
  }

  /** SIGTERM to every child, SIGKILL to those still alive after `graceMs`; none is restarted after. */
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

  /** The process id of a running child; undefined while it is down. */
  pid(name: string): number | undefined {
    return this.children.get(name)?.pid;
  }

  killAll(): void {
    this.stopping = true;
    for (const timer of this.timers) clearTimeout(timer);
    for (const child of this.children.values()) child.kill('SIGKILL');
  }
}
