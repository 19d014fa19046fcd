/**
 * CPU time of a service's processes, read by pid from /proc (Linux): every process descending from
 * this one (the service a benchmark started), named by the caller, plus the machine's MariaDB and
 * Redis that the service uses (the ones listening on its ports), which are shared: anything else
 * that uses them in the window counts too.
 */
import fs from 'node:fs';

const TICKS_PER_SECOND = 100;

/** CPU milliseconds spent so far and the kind the process was given, per pid. */
export type CpuReading = Map<number, { kind: string; cpuMs: number }>;

/** Kind of the processes under the bench that belong to no named one: the bench client's own helpers (tsx's esbuild). */
export const BENCH_HELPER = 'bench client helper';

/** The machine-wide services a benchmark cannot start itself, by executable name (/proc/PID/comm). */
const SHARED_SERVICES: Record<string, string> = { mariadbd: 'mariadb (shared)', mysqld: 'mysql (shared)', 'redis-server': 'redis (shared)' };

/** Fields of /proc/PID/stat after the parenthesised command name: state, ppid, ... utime (12th), stime (13th). */
function statFields(pid: number | string): string[] {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

const cpuMsOf = (fields: string[]) => ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;

/** User + system CPU milliseconds one process has spent so far. */
export function processCpuMs(pid: number): number {
  return cpuMsOf(statFields(pid));
}

type ProcessStat = { pid: number; parent: number; cpuMs: number; comm: string };

function readProcesses(): ProcessStat[] {
  const out: ProcessStat[] = [];
  for (const name of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const fields = statFields(name);
      const comm = fs.readFileSync(`/proc/${name}/comm`, 'utf8').trim();
      out.push({ pid: Number(name), parent: Number(fields[1]), cpuMs: cpuMsOf(fields), comm });
    } catch {
      // The process ended between listing and reading.
    }
  }
  return out;
}

const TCP_LISTEN = '0A';

/** Socket inodes listening on any of `ports` (IPv4 or IPv6), from /proc/net/tcp and tcp6. */
function listeningSockets(ports: number[]): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(table)) continue;
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const port = parseInt(fields[1]?.split(':')[1] ?? '', 16);
      if (fields[3] === TCP_LISTEN && ports.includes(port)) inodes.add(fields[9]);
    }
  }
  return inodes;
}

function socketInode(pid: number, fd: string): string | undefined {
  try {
    return /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
  } catch {
    return undefined; // Closed since the listing.
  }
}

function holdsSocket(pid: number, inodes: Set<string>): boolean {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => inodes.has(socketInode(pid, fd) ?? ''));
  } catch {
    return false; // Ended since the listing.
  }
}

/**
 * The CPU spent so far by each process descending from this one and by the shared MariaDB and
 * Redis listening on `sharedServicePorts`. `kindOf` names processes by pid; a process it leaves unnamed takes the kind of its nearest
 * named ancestor (a worker's own helper processes are the worker's cost), else BENCH_HELPER.
 * Empty where there is no /proc.
 */
export function readServiceCpu(kindOf: (pid: number) => string | undefined, sharedServicePorts: number[]): CpuReading {
  const reading: CpuReading = new Map();
  if (!fs.existsSync('/proc/self/stat')) return reading;
  const processes = readProcesses();
  const servicePorts = listeningSockets(sharedServicePorts);
  const parentOf = new Map(processes.map((p) => [p.pid, p.parent]));
  /** The process and its ancestors up to, not including, this one; undefined when it does not descend from this one. */
  const lineage = (pid: number): number[] | undefined => {
    const chain: number[] = [];
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parentOf.get(p)) {
      if (p === process.pid) return chain;
      chain.push(p);
    }
    return undefined;
  };
  for (const p of processes) {
    const shared = SHARED_SERVICES[p.comm];
    const chain = lineage(p.pid);
    if (shared && holdsSocket(p.pid, servicePorts)) reading.set(p.pid, { kind: shared, cpuMs: p.cpuMs });
    else if (chain) reading.set(p.pid, { kind: chain.map(kindOf).find((kind) => kind !== undefined) ?? BENCH_HELPER, cpuMs: p.cpuMs });
  }
  return reading;
}

/**
 * CPU milliseconds per kind between two readings. A process started in between (a restarted
 * worker) counts whole; one that ended in between is lost, since /proc no longer has it.
 */
export function cpuSpentByKind(before: CpuReading, after: CpuReading): Map<string, number> {
  const spent = new Map<string, number>();
  for (const [pid, { kind, cpuMs }] of after) spent.set(kind, (spent.get(kind) ?? 0) + cpuMs - (before.get(pid)?.cpuMs ?? 0));
  return spent;
}

/** Pids of the shared services in a reading, by kind: the output says which processes were measured. */
export function sharedServicePids(reading: CpuReading): Map<string, number[]> {
  const shared = new Set(Object.values(SHARED_SERVICES));
  const pids = new Map<string, number[]>();
  for (const [pid, { kind }] of reading) if (shared.has(kind)) pids.set(kind, [...(pids.get(kind) ?? []), pid]);
  return pids;
}
