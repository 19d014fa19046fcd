/**
 * The faults of a chaos run, one scenario each. `inject` returns once the fault is over (at once for
 * a kill), with a note on what it did. Nothing here touches the machine's shared Redis or MariaDB
 * server: Redis is the run's own, and only the service's own MariaDB connections are killed.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import type { Knex } from 'knex';
import type { Config } from '../../src/config.js';
import type { SupervisedService } from '../../src/service.js';
import type { BlobKind } from './environment.js';
import type { PrivateRedis } from './private-redis.js';

/** The S3 test server the blobs are in, when they are in object storage. */
export type ObjectStore = { pid(): number | undefined; down(): Promise<void>; up(): Promise<void> };

export type ChaosTarget = { processes: SupervisedService; redis: PrivateRedis; config: Config; db: Knex; objectStore?: ObjectStore };

/** `key` names it in `--only`; `name` in the table. */
export type Scenario = { key: string; name: string; inject(target: ChaosTarget): Promise<string | undefined> };

export type FaultDurations = { chromaPauseMs: number; blobsOutageMs: number; redisDownMs: number };

export const DEFAULT_DURATIONS: FaultDurations = { chromaPauseMs: 60_000, blobsOutageMs: 30_000, redisDownMs: 3000 };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long a fault waits for its process to be up (the supervisor may be between two restarts of it). */
const RUNNING_TIMEOUT_MS = 60_000;

async function runningPid(processes: SupervisedService, name: string): Promise<number> {
  const deadline = Date.now() + RUNNING_TIMEOUT_MS;
  for (let pid = processes.pid(name); ; pid = processes.pid(name)) {
    if (pid !== undefined) return pid;
    if (Date.now() > deadline) throw new Error(`${name} has not been up for ${RUNNING_TIMEOUT_MS / 1000} s: is it crashing at start? (its log says why)`);
    await sleep(100);
  }
}

/** SIGKILL to one supervised process (kill -9). */
function kill(processName: string, key = processName, name = `kill -9 ${processName}`): Scenario {
  return {
    key,
    name,
    async inject({ processes }) {
      process.kill(await runningPid(processes, processName), 'SIGKILL');
      return undefined;
    },
  };
}

/** KILL of every MariaDB connection the service holds to its database (the server itself stays up). */
const mariadbConnections: Scenario = {
  key: 'mariadb',
  name: 'MariaDB connections killed',
  async inject({ db, config }) {
    // The run's own client holds a single connection, the one asking.
    const [rows] = (await db.raw('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()', [
      config.databaseName,
    ])) as [{ id: number }[]];
    let killed = 0;
    for (const { id } of rows) {
      // A connection may close by itself between the listing and its KILL.
      await db.raw('KILL ?', [id]).then(() => killed++, () => {});
    }
    return `${killed} connections killed`;
  },
};

/** SIGSTOP, then SIGCONT `ms` later: a server that hangs without closing its connections. */
function chromaPause(ms: number): Scenario {
  return {
    key: 'chroma-pause',
    name: `Chroma paused ${ms / 1000} s`,
    async inject({ processes }) {
      const pid = await runningPid(processes, 'chroma');
      process.kill(pid, 'SIGSTOP');
      await sleep(ms);
      process.kill(pid, 'SIGCONT');
      return undefined;
    },
  };
}

/**
 * The blob store out of order for `ms`. On local disk, its folder replaced by a plain file: neither
 * readable nor writable, even by root (whom chmod would not stop). In object storage, the server
 * stopped (connections refused), then started again with its objects.
 */
function blobsOutage(ms: number): Scenario {
  return {
    key: 'blobs',
    name: `blob store out of order ${ms / 1000} s`,
    async inject({ config, objectStore }) {
      if (objectStore) {
        await objectStore.down();
        await sleep(ms);
        await objectStore.up();
        return 'object store stopped and started again';
      }
      const isFolder = await fs.stat(config.blobsDir).then((stat) => stat.isDirectory(), () => false);
      if (!isFolder) return `skipped: no blob folder at ${config.blobsDir} (blobs in object storage?)`;
      const aside = `${config.blobsDir}.chaos-aside`;
      await fs.rename(config.blobsDir, aside);
      // The service may create the folder again between the rename and the write (an upload, a
      // readiness probe): fold what it wrote into the aside folder and try again.
      for (;;) {
        try {
          await fs.writeFile(config.blobsDir, 'the blob store is out of order (npm run chaos)\n', { flag: 'wx' });
          break;
        } catch (error) {
          if (!['EEXIST', 'EISDIR'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
          await moveInto(config.blobsDir, aside);
        }
      }
      await sleep(ms);
      await fs.rm(config.blobsDir);
      await moveInto(aside, config.blobsDir);
      return undefined;
    },
  };
}

/**
 * Moves the folder `from` to `to`, merging into `to` when something created it meanwhile. The
 * service may be writing into `from` by name as we go, so it is first renamed to a name that only
 * this function knows: copying and removing it after that cannot race with new files.
 */
async function moveInto(from: string, to: string): Promise<void> {
  try {
    await fs.rename(from, to);
    return;
  } catch (error) {
    if (!['EEXIST', 'ENOTEMPTY', 'EISDIR'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
  }
  const detached = `${from}.chaos-${randomUUID()}`;
  await fs.rename(from, detached);
  await fs.cp(detached, to, { recursive: true, force: false, errorOnExist: false });
  await fs.rm(detached, { recursive: true, force: true });
}

/**
 * The object store's server SIGSTOPped for `ms`: connections are taken (by the kernel) and never
 * answered, so only the clients' timeouts end requests. Only for blobs in object storage.
 */
function objectStorePause(ms: number): Scenario {
  return {
    key: 'blobs-pause',
    name: `object store paused ${ms / 1000} s`,
    async inject({ objectStore }) {
      const pid = objectStore?.pid();
      if (pid === undefined) return 'skipped: blobs are not in object storage';
      process.kill(pid, 'SIGSTOP');
      await sleep(ms);
      process.kill(pid, 'SIGCONT');
      return undefined;
    },
  };
}

function redisRestart(downMs: number): Scenario {
  return {
    key: 'redis',
    name: 'Redis restarted empty',
    async inject({ redis }) {
      await redis.restartEmpty(downMs);
      return `down ${downMs / 1000} s`;
    },
  };
}

/**
 * Every scenario, in the order a run takes them: one kill per supervised worker process, then the
 * backing services. Redis comes last: what it strands (jobs, schedulers) could spill into later ones.
 */
export function allScenarios(workerProcesses: string[], blobs: BlobKind = 'disk', durations: FaultDurations = DEFAULT_DURATIONS): Scenario[] {
  return [
    ...workerProcesses.map((name) => kill(name)),
    mariadbConnections,
    kill('chroma', 'chroma-kill', 'Chroma killed (-9)'),
    chromaPause(durations.chromaPauseMs),
    blobsOutage(durations.blobsOutageMs),
    ...(blobs === 's3' ? [objectStorePause(durations.blobsOutageMs)] : []),
    redisRestart(durations.redisDownMs),
  ];
}
