/**
 * `npm run bench:round-trips`: what a MySQL round trip costs against a statement sent with others
 * in one multi-statement query (src/storage/transactions.ts), on this machine: CPU microseconds per
 * statement of this process (the client) and of the MariaDB that DATABASE_URL names, and wall time.
 * On a virtual machine a round trip's system calls and wake-ups cost far more than the statement.
 */
import { loadConfig } from '../src/config.js';
import { connectDatabase, ensureDatabase } from '../src/storage/db.js';
import { cpuSpentByKind, readServiceCpu } from './process-cpu.js';

const STATEMENTS = 3000;
const BATCHES = [1, 2, 5, 10];
const PASSES = 2;

const config = loadConfig();
await ensureDatabase(config);
const db = connectDatabase(config, { min: 1, max: 1 });
const port = Number(new URL(config.DATABASE_URL).port) || 3306;
const serverCpu = () => readServiceCpu(() => undefined, [port]);
const mariadbMs = (before: ReturnType<typeof serverCpu>, after: ReturnType<typeof serverCpu>) =>
  [...cpuSpentByKind(before, after)].filter(([kind]) => kind.endsWith('(shared)')).reduce((sum, [, ms]) => sum + ms, 0);

try {
  // Warm: the first thousand round trips of a process cost several times the later ones.
  for (let i = 0; i < 1000; i++) await db.raw('SELECT 1');
  console.log('| statements per round trip | client CPU µs per statement | MariaDB CPU µs per statement | wall µs per statement |\n|---:|---:|---:|---:|');
  for (let pass = 0; pass < PASSES; pass++) {
    for (const batch of BATCHES) {
      const sql = Array(batch).fill('SELECT 1').join(';\n');
      const server = serverCpu();
      const client = process.cpuUsage();
      const started = performance.now();
      for (let sent = 0; sent < STATEMENTS; sent += batch) await db.raw(sql);
      const wallMs = performance.now() - started;
      const used = process.cpuUsage(client);
      const perStatement = (ms: number) => ((ms * 1000) / STATEMENTS).toFixed(0);
      console.log(`| ${batch} | ${perStatement((used.user + used.system) / 1000)} | ${perStatement(mariadbMs(server, serverCpu()))} | ${perStatement(wallMs)} |`);
    }
  }
} finally {
  await db.destroy();
}
