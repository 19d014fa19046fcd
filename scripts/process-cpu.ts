/**
 * CPU time per process of a service the caller started, read from /proc (Linux): which part of the
 * pipeline spends the machine's cores. Only descendants of this process count, named by their
 * command line; MariaDB and Redis are added as shared (other clients' load lands there too).
 */
import fs from 'node:fs';
import { PIPELINE_WORKERS } from '../src/supervisor.js';

const TICKS_PER_SECOND = 100;

type ProcessStat = { pid: number; parent: number; cpuMs: number; part?: string };

/** Service part of a command line, or undefined for a process that is not part of the service. */
function partOf(argv: string[]): string | undefined {
  const runner = argv.findIndex((a) => a.endsWith('workers/runner.ts'));
  if (runner >= 0) {
    const workers = argv.slice(runner + 1).join('+');
    return workers === PIPELINE_WORKERS.join('+') ? 'pipeline processes (all stages)' : workers;
  }
  const line = argv.join(' ');
  if (line.includes('src/api/main.ts')) return 'api';
  if (/\bchroma\b.*\brun\b/.test(line)) return 'chroma';
  if (/mariadbd|mysqld/.test(argv[0] ?? '')) return 'mariadb (shared)';
  if (/redis-server/.test(argv[0] ?? '')) return 'redis (shared)';
  return undefined;
}

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

function readProcesses(): ProcessStat[] {
  const out: ProcessStat[] = [];
  for (const name of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const fields = statFields(name);
      const argv = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid: Number(name), parent: Number(fields[1]), cpuMs: cpuMsOf(fields), part: partOf(argv) });
    } catch {
      // The process ended between listing and reading.
    }
  }
  return out;
}

/** Total user + system CPU milliseconds per service part, keyed `part` (pid-qualified to survive restarts). */
export function cpuByPart(): Map<string, number> {
  const parts = new Map<string, number>();
  if (!fs.existsSync('/proc/self/stat')) return parts;
  const processes = readProcesses();
  const parentOf = new Map(processes.map((p) => [p.pid, p.parent]));
  const descends = (pid: number) => {
    for (let p = parentOf.get(pid); p !== undefined && p > 1; p = parentOf.get(p)) if (p === process.pid) return true;
    return false;
  };
  for (const p of processes) {
    if (!p.part || (!p.part.endsWith('(shared)') && !descends(p.pid))) continue;
    parts.set(`${p.part}\t${p.pid}`, p.cpuMs);
  }
  return parts;
}

/** CPU milliseconds per part spent between two readings; a process that ended or restarted in between is left out. */
export function cpuSpent(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const spent = new Map<string, number>();
  for (const [key, ms] of after) {
    const start = before.get(key);
    if (start === undefined) continue;
    const part = key.split('\t')[0];
    spent.set(part, (spent.get(part) ?? 0) + ms - start);
  }
  return spent;
}
