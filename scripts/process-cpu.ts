/**
 * CPU time of a service's processes, read by pid from /proc (Linux): every process descending from
 * this one (the service a benchmark started), named by the caller, plus the machine's MariaDB and
 * Redis, which are shared: anything else that uses them in the window counts too.
 */
import fs from 'node:fs';

const TICKS_PER_SECOND = 100;

/** A process as the caller's classifier sees it. */
export type ProcessView = { pid: number; argv: string[] };

/** CPU milliseconds spent so far and the kind the process was given, per pid. */
export type CpuReading = Map<number, { kind: string; cpuMs: number }>;

/**
 * Kinds of the processes under the bench that the caller does not name: one with named processes
 * under it supervises them (part of the service); any other is a helper of the bench client's own
 * (tsx's esbuild), not part of the service.
 */
export const SUPERVISOR = 'supervisor';
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

type ProcessStat = { pid: number; parent: number; cpuMs: number; comm: string; argv: string[] };

function readProcesses(): ProcessStat[] {
  const out: ProcessStat[] = [];
  for (const name of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const fields = statFields(name);
      const comm = fs.readFileSync(`/proc/${name}/comm`, 'utf8').trim();
      const argv = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid: Number(name), parent: Number(fields[1]), cpuMs: cpuMsOf(fields), comm, argv });
    } catch {
      // The process ended between listing and reading.
    }
  }
  return out;
}

/**
 * The CPU spent so far by each process descending from this one and by the shared MariaDB and
 * Redis. `name` names a process by what it is; one it leaves unnamed takes the name of its nearest
 * named ancestor (a worker's own helper processes are the worker's cost), else SUPERVISOR or
 * BENCH_HELPER. Empty where there is no /proc.
 */
export function readServiceCpu(name: (process: ProcessView) => string | undefined): CpuReading {
  const reading: CpuReading = new Map();
  if (!fs.existsSync('/proc/self/stat')) return reading;
  const processes = readProcesses();
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
  const descendants = processes.flatMap((p) => {
    const chain = lineage(p.pid);
    return chain ? [{ ...p, chain }] : [];
  });
  const named = new Map(descendants.map((p) => [p.pid, name(p)]));
  for (const p of processes) {
    const shared = SHARED_SERVICES[p.comm];
    if (shared) reading.set(p.pid, { kind: shared, cpuMs: p.cpuMs });
  }
  for (const p of descendants) {
    const ownOrAncestors = p.chain.map((pid) => named.get(pid)).find((kind) => kind !== undefined);
    const supervises = descendants.some((q) => q.chain.includes(p.pid) && named.get(q.pid) !== undefined);
    reading.set(p.pid, { kind: ownOrAncestors ?? (supervises ? SUPERVISOR : BENCH_HELPER), cpuMs: p.cpuMs });
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
