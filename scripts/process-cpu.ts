/**
 * CPU time per process of the running service, read from /proc (Linux): which part of the pipeline
 * spends the machine's cores. Processes are named by their command line; others are ignored.
 */
import fs from 'node:fs';

const TICKS_PER_SECOND = 100;

/** Service part of a command line, or undefined for processes that are not part of the service. */
function partOf(argv: string[]): string | undefined {
  const line = argv.join(' ');
  const runner = argv.findIndex((a) => a.endsWith('workers/runner.ts'));
  if (runner >= 0) return argv.slice(runner + 1).join('+');
  if (line.includes('src/api/main.ts')) return 'api';
  if (/\bchroma\b.*\brun\b/.test(line)) return 'chroma';
  if (/mariadbd|mysqld/.test(argv[0] ?? '')) return 'mariadb';
  if (/redis-server/.test(argv[0] ?? '')) return 'redis';
  return undefined;
}

/** Total user + system CPU milliseconds per service part, summed over its processes. */
export function cpuByPart(): Map<string, number> {
  const parts = new Map<string, number>();
  if (!fs.existsSync('/proc/self/stat')) return parts;
  for (const pid of fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const part = partOf(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean));
      if (!part) continue;
      // Fields after the parenthesised command name; utime and stime are the 12th and 13th of them.
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
      parts.set(part, (parts.get(part) ?? 0) + ms);
    } catch {
      // The process ended between listing and reading.
    }
  }
  return parts;
}

/** CPU milliseconds per part spent between two readings. */
export function cpuSpent(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  return new Map([...after].map(([part, ms]) => [part, ms - (before.get(part) ?? 0)]));
}
