/**
 * The whole service on one machine: what `npm start` runs, and what the benchmarks and `npm run
 * chaos` run through scripts/service-harness.ts. Creates the database if missing and migrates, then
 * starts the local Chroma server (unless CHROMA_URL names one), the API and every worker process,
 * each supervised: restarted with back-off when it dies.
 */
import fs from 'node:fs/promises';
import type { Logger } from 'pino';
import { loadConfig, type Config } from './config.js';
import { localChromaCommand, refuseTakenPort, waitForHeartbeat } from './gallery/local-server.js';
import { connectDatabase, ensureDatabase, migrateLatest } from './storage/db.js';
import { CODE_ROOT, DEFAULT_RESTART_POLICY, serviceSpecs, Supervisor, type ChildExit, type RestartPolicy } from './supervisor.js';

/** How long the local Chroma may take to answer its first heartbeat. */
const CHROMA_START_TIMEOUT_MS = 60_000;

export type ServiceOptions = {
  /** The environment the service reads its configuration from and hands to its processes. */
  env: NodeJS.ProcessEnv;
  logger: Logger;
  restartPolicy?: RestartPolicy;
};

export type SupervisedService = {
  config: Config;
  /** The Chroma the workers use: the local one, or CHROMA_URL's. */
  chromaUrl: string;
  /** Every supervised process by name: `chroma` (when local), `api`, then the worker groups (pipeline-1, …). */
  processNames: string[];
  /** The process id of a supervised process; undefined while it is down (between a death and its restart). */
  pid(name: string): number | undefined;
  /** Sends a signal to one supervised process. */
  signal(name: string, signal: NodeJS.Signals): boolean;
  /** Calls `listener` at each unasked death of a supervised process, with the delay before its restart; returns how to stop. */
  onExit(listener: (exit: ChildExit) => void): () => void;
  /** Drains the API and the workers (SIGKILL after `graceMs`), then stops Chroma, which they may use to the end. */
  stop(graceMs: number): Promise<void>;
  /** SIGKILL to every process at once. */
  kill(): void;
};

export async function startService(options: ServiceOptions): Promise<SupervisedService> {
  const config = loadConfig(options.env);
  const policy = options.restartPolicy ?? DEFAULT_RESTART_POLICY;
  await migrate(config);

  const env: NodeJS.ProcessEnv = { ...options.env };
  // Chroma and the processes that use it have supervisors of their own, so that it stops last.
  const backing = new Supervisor(process.cwd(), env, options.logger, policy);
  if (!config.CHROMA_URL) {
    env.CHROMA_URL = await startLocalChroma(backing, config);
    options.logger.info({ url: env.CHROMA_URL, dataDir: config.chromaDir }, 'local chroma started');
  }
  const processes = new Supervisor(process.cwd(), env, options.logger, policy);
  const specs = serviceSpecs(CODE_ROOT, config);
  for (const spec of specs) processes.start(spec);

  const names = specs.map((spec) => spec.name);
  const supervisorOf = (name: string) => (names.includes(name) ? processes : backing);
  return {
    config,
    chromaUrl: env.CHROMA_URL!,
    processNames: [...(config.CHROMA_URL ? [] : ['chroma']), ...names],
    pid: (name) => supervisorOf(name).pid(name),
    signal: (name, signal) => supervisorOf(name).signal(name, signal),
    onExit(listener) {
      processes.on('exit', listener);
      backing.on('exit', listener);
      return () => {
        processes.off('exit', listener);
        backing.off('exit', listener);
      };
    },
    async stop(graceMs) {
      await processes.stop(graceMs);
      await backing.stop(graceMs);
    },
    kill() {
      processes.killAll();
      backing.killAll();
    },
  };
}

/** Migrates before any process starts, so that the API and the workers never race to do it. */
async function migrate(config: Config): Promise<void> {
  await ensureDatabase(config);
  const db = connectDatabase(config, { min: 0, max: 1 });
  try {
    await migrateLatest(db);
  } finally {
    await db.destroy();
  }
}

/** Starts the bundled Chroma under `supervisor` and waits for its first heartbeat; returns its URL. */
async function startLocalChroma(supervisor: Supervisor, config: Config): Promise<string> {
  await fs.mkdir(config.chromaDir, { recursive: true });
  const chroma = localChromaCommand(config.chromaDir, config.CHROMA_PORT);
  await refuseTakenPort(chroma.url);
  let firstExit: ChildExit | undefined;
  const noteExit = (exit: ChildExit) => (firstExit ??= exit);
  supervisor.on('exit', noteExit);
  supervisor.start({ name: 'chroma', script: chroma.script, args: chroma.args, quiet: true });
  try {
    await waitForHeartbeat(chroma.url, CHROMA_START_TIMEOUT_MS, () =>
      firstExit ? `the local Chroma exited (code ${firstExit.code}, signal ${firstExit.signal}) before answering on ${chroma.url}` : undefined,
    );
  } catch (error) {
    await supervisor.stop(5000);
    throw error;
  } finally {
    supervisor.off('exit', noteExit);
  }
  return chroma.url;
}
