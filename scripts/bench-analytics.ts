/**
 * npm run bench:analytics [-- --sightings 1000000 --stores 20 --requests 200 --keep | --db NAME]
 *
 * Generates a year of sightings for 20 stores of one merchant (a million by default) in a
 * throwaway database, builds visits and rollups with the rebuild path, then measures the
 * analytics endpoints over HTTP (real auth middleware, bare Koa app) and prints p50/p95/max with
 * the answer cache off and on. Also times the incremental path (recordSightings per capture, and
 * its CPU here and in MariaDB) on a sample. The last line names the slowest endpoint uncached.
 *
 * --db NAME uses (and keeps) a database of that name: the first run generates and builds it,
 * later runs find the bench merchant there, run the migrations (new ones backfill) and go
 * straight to the measurements (generation and rebuild take minutes on a small machine).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import type { Knex } from 'knex';
import { loadConfig, type Config } from '../src/config.js';
import { recordSightings, lockSubjects } from '../src/services/analytics/index.js';
import { rebuildAnalytics } from '../src/services/analytics/rebuild.js';
import { connectDatabase, ensureDatabase, migrateLatest } from '../src/storage/db.js';
import { createApiKey } from '../src/storage/repositories/apiKeys.js';
import { createAnalyticsApp } from './analytics-server.js';
import { cpuSpentByKind, readServiceCpu } from './process-cpu.js';

const { values } = parseArgs({
  options: {
    sightings: { type: 'string', default: '1000000' },
    stores: { type: 'string', default: '20' },
    requests: { type: 'string', default: '200' },
    keep: { type: 'boolean', default: false },
    db: { type: 'string' },
  },
});
const TARGET = Number(values.sightings);
const STORES = Number(values.stores);
const REQUESTS = Number(values.requests);
const YEAR_START = Date.parse('2025-01-01T00:00:00Z');
const YEAR_END = Date.parse('2026-01-01T00:00:00Z');
const ZONES = ['America/New_York', 'Europe/Paris', 'Asia/Kolkata', 'Australia/Sydney', 'America/Los_Angeles', 'Europe/London', 'Asia/Tokyo', 'America/Sao_Paulo', 'Asia/Kathmandu', 'UTC'];

// mulberry32: a small PRNG with a full 2^32 period (deterministic data for comparable runs)
let seed = 12345;
const rnd = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

async function main() {
  const base = loadConfig();
  const url = new URL(base.DATABASE_URL);
  if (values.db !== undefined && !/^[A-Za-z0-9_]+$/.test(values.db)) throw new Error('--db: letters, digits and _ only');
  url.pathname = `/${values.db ?? `fp_bench_${randomBytes(4).toString('hex')}`}`;
  const keep = values.keep || values.db !== undefined;
  const config = loadConfig({ ...process.env, DATABASE_URL: url.toString(), LOG_LEVEL: 'silent' });
  await ensureDatabase(config);
  const db = connectDatabase(config, { min: 0, max: 12 });
  const t0 = Date.now();
  try {
    await migrateLatest(db);
    const existing = values.db !== undefined ? await db('merchants').where('name', 'Bench merchant').first('id') : undefined;
    if (existing) {
      const stores: Store[] = await db('stores').where('merchant_id', existing.id).orderBy('name').select('id', 'timezone');
      const total = Number((await db('sightings').count({ n: '*' }).first())?.n);
      console.log(`reusing ${config.databaseName}: ${total} sightings, ${stores.length} stores`);
      await measure(db, config, existing.id, stores, total, null, null);
      return;
    }
    const merchantId = randomUUID();
    await db('merchants').insert({ id: merchantId, name: 'Bench merchant' });
    const stores: Store[] = Array.from({ length: STORES }, (_, i) => ({ id: randomUUID(), timezone: ZONES[i % ZONES.length] }));
    await db('stores').insert(stores.map((s, i) => ({ id: s.id, merchant_id: merchantId, name: `Store ${String(i + 1).padStart(2, '0')}`, timezone: s.timezone })));
    const members = Array.from({ length: 3000 }, () => randomUUID());
    const visitorsPool = Array.from({ length: 60000 }, () => randomUUID());
    for (let i = 0; i < members.length; i += 1000) {
      await db('people').insert(members.slice(i, i + 1000).map((id, j) => ({ id, merchant_id: merchantId, display_name: `Member ${i + j}`, external_id: `m-${i + j}` })));
    }
    for (let i = 0; i < visitorsPool.length; i += 2000) {
      const at = new Date(YEAR_START);
      await db('visitors').insert(visitorsPool.slice(i, i + 2000).map((id) => ({ id, merchant_id: merchantId, first_seen_at: at, last_seen_at: at })));
    }

    // ---- generate sightings: visits of 1..7 sightings a few minutes apart, store hours 08-21 local
    const perStore = Math.ceil(TARGET / STORES);
    let total = 0;
    for (const store of stores) {
      const rows: Record<string, unknown>[] = [];
      while (rows.length < perStore) {
        const day = Math.floor(rnd() * 365);
        const localHour = 8 + Math.floor(Math.pow(rnd(), 0.8) * 13);
        let t = YEAR_START + day * 86_400_000 + localHour * 3_600_000 + Math.floor(rnd() * 3_600_000);
        const member = rnd() < 0.15;
        // returning visitors: a skewed pick favours a small core of regulars
        const subject = member ? members[Math.floor(Math.pow(rnd(), 2) * members.length)] : visitorsPool[Math.floor(Math.pow(rnd(), 1.5) * visitorsPool.length)];
        const n = 1 + Math.floor(rnd() * 7);
        const age = Math.floor(8 + rnd() * 70);
        const gender = rnd() < 0.5 ? 'male' : 'female';
        for (let k = 0; k < n && rows.length < perStore; k++) {
          rows.push({
            face_id: randomUUID(), capture_id: randomUUID(), store_id: store.id, merchant_id: merchantId,
            subject_kind: member ? 'member' : 'visitor', subject_id: subject,
            person_id: member ? subject : null, visitor_id: member ? null : subject,
            seen_at: new Date(Math.min(t, YEAR_END - 1)), age: age + rnd(), gender,
          });
          t += 30_000 + Math.floor(rnd() * 9 * 60_000);
        }
      }
      await db.transaction(async (trx) => {
        await trx.raw('SET FOREIGN_KEY_CHECKS = 0');
        for (let i = 0; i < rows.length; i += 4000) await trx('sightings').insert(rows.slice(i, i + 4000));
        await trx.raw('SET FOREIGN_KEY_CHECKS = 1');
      });
      total += rows.length;
    }
    const tGen = Date.now();
    console.log(`generated ${total} sightings for ${STORES} stores in ${((tGen - t0) / 1000).toFixed(1)} s`);

    // ---- build visits and rollups (rebuild path), stores in parallel (4 at a time)
    const queue = [...stores];
    await Promise.all(Array.from({ length: 2 }, async () => {
      for (let s = queue.shift(); s; s = queue.shift()) {
        await rebuildAnalytics(db, { storeId: s.id, from: new Date(YEAR_START), to: new Date(YEAR_END), visitGapMinutes: 30 });
      }
    }));
    const tBuild = Date.now();
    console.log(`rebuilt visits and rollups in ${((tBuild - tGen) / 1000).toFixed(1)} s`);
    await measure(db, config, merchantId, stores, total, visitorsPool, (tBuild - tGen) / 1000);
  } finally {
    if (!keep) await db.raw('DROP DATABASE IF EXISTS ??', [config.databaseName]);
    else console.log(`kept database ${config.databaseName}`);
    await db.destroy();
  }
}

type Store = { id: string; timezone: string };

async function measure(db: Knex, config: Config, merchantId: string, stores: Store[], total: number, pool: string[] | null, rebuildSeconds: number | null) {
    const visitorsPool = pool ?? (await db('visitors').where('merchant_id', merchantId).orderBy('id').limit(60000).pluck('id'));
    const counts = await db('visits').count({ n: '*' }).first();
    const rollupCount = await db('analytics_rollups').count({ n: '*' }).first();
    const STORES = stores.length;

    // ---- incremental path: 500 captures of 1-3 faces at store 0, late and out of order; the CPU
    // of this process and of MariaDB (shared: anything else using it in the window counts too)
    const mariadbPort = Number(new URL(config.DATABASE_URL).port || 3306);
    const cpuBefore = readServiceCpu(() => undefined, [mariadbPort]);
    const ownCpuBefore = process.cpuUsage();
    const incr: number[] = [];
    for (let i = 0; i < 500; i++) {
      const store = stores[0];
      const seenAt = new Date(YEAR_START + Math.floor(rnd() * 365 * 86_400_000));
      const faces = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => visitorsPool[Math.floor(rnd() * visitorsPool.length)]);
      const unique = [...new Set(faces)];
      const started = performance.now();
      await db.transaction(async (trx) => {
        await lockSubjects(trx, unique.map((id) => ({ merchantId, subjectKind: 'visitor' as const, subjectId: id })));
        await trx.raw('SET FOREIGN_KEY_CHECKS = 0');
        const sightings = unique.map((id) => ({ face_id: randomUUID(), capture_id: randomUUID(), store_id: store.id, merchant_id: merchantId, subject_kind: 'visitor', subject_id: id, visitor_id: id, seen_at: seenAt, age: 30, gender: 'female' }));
        await trx('sightings').insert(sightings);
        await trx.raw('SET FOREIGN_KEY_CHECKS = 1');
        await recordSightings(trx, sightings.map((s) => ({ storeId: store.id, merchantId, subjectKind: 'visitor' as const, subjectId: s.subject_id, seenAt, faceId: s.face_id })), { visitGapMinutes: 30 });
      });
      incr.push(performance.now() - started);
    }
    const ownCpu = process.cpuUsage(ownCpuBefore);
    const dbCpu = [...cpuSpentByKind(cpuBefore, readServiceCpu(() => undefined, [mariadbPort]))]
      .filter(([kind]) => /^(mariadb|mysql) /.test(kind)).reduce((sum, [, ms]) => sum + ms, 0);
    const cpuPerCapture = { bench: (ownCpu.user + ownCpu.system) / 1000 / incr.length, mariadb: dbCpu / incr.length };
    incr.sort((a, b) => a - b);

    // ---- HTTP latency
    const adminKey = (await createApiKey(db, { role: 'admin' })).key;
    const merchantKey = (await createApiKey(db, { role: 'merchant', merchantId })).key;
    const year = 'from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z';
    const endpoints: [string, (storeId: string) => string][] = [
      ['traffic, hour, 1 year', (s) => `/v1/stores/${s}/analytics/traffic?${year}&interval=hour`],
      ['traffic, day, 1 year', (s) => `/v1/stores/${s}/analytics/traffic?${year}&interval=day`],
      ['traffic, hour, 7 days', (s) => `/v1/stores/${s}/analytics/traffic?from=2025-06-01T00:00:00Z&to=2025-06-08T00:00:00Z&interval=hour`],
      ['traffic CSV, hour, 1 year', (s) => `/v1/stores/${s}/analytics/traffic?${year}&interval=hour&format=csv`],
      ['demographics, day, 1 year', (s) => `/v1/stores/${s}/analytics/demographics?${year}&interval=day`],
      ['demographics, hour, 1 year', (s) => `/v1/stores/${s}/analytics/demographics?${year}&interval=hour`],
      ['visitors, day, 1 year', (s) => `/v1/stores/${s}/analytics/visitors?${year}&interval=day`],
      ['peak-hours, 1 year', (s) => `/v1/stores/${s}/analytics/peak-hours?${year}`],
      ['merchant summary (20 stores), 1 year', () => `/v1/merchants/${merchantId}/analytics/summary?${year}`],
      ['recognitions, since 30 days', (s) => `/v1/stores/${s}/recognitions?since=2025-12-01T00:00:00Z`],
    ];
    // Two passes: answer cache off (every request computed from the tables: the figure that
    // matters after each new capture), then on (a dashboard re-reading unchanged data). In the
    // cached pass the first request per store (and the only summary key) is a miss; with 10
    // warm-up requests and 20 stores, 10 of the measured requests per store endpoint are misses.
    const rows = new Map<string, string[]>();
    const cacheOffP95 = new Map<string, number>();
    for (const cacheBytes of [0, undefined]) {
      const app = createAnalyticsApp(db, config, { cacheBytes });
      const server = app.listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      for (const [name, path] of endpoints) {
        const times: number[] = [];
        for (let i = 0; i < REQUESTS + 10; i++) {
          const store = stores[i % stores.length];
          const started = performance.now();
          const res = await fetch(origin + path(store.id), { headers: { Authorization: `Bearer ${i % 2 ? merchantKey : adminKey}` } });
          await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`${name}: HTTP ${res.status}`);
          if (i >= 10) times.push(performance.now() - started);
        }
        times.sort((a, b) => a - b);
        if (cacheBytes === 0) cacheOffP95.set(name, pct(times, 95));
        const cells = [pct(times, 50), pct(times, 95), times[times.length - 1]].map((x) => x.toFixed(1).padStart(7));
        rows.set(name, [...(rows.get(name) ?? []), ...cells]);
      }
      await new Promise((r) => server.close(r));
    }
    const table = endpoints.map(([name]) => `| ${name.padEnd(38)} | ${rows.get(name)!.join(' | ')} |`);

    console.log('');
    console.log(`${total} sightings, ${counts?.n} visits, ${rollupCount?.n} rollup rows, ${STORES} stores, ${REQUESTS} requests per endpoint (sequential, after 10 warm-up requests)`);
    console.log('');
    console.log(`| ${''.padEnd(38)} | answer cache off            | answer cache on             |`);
    console.log(`| ${'endpoint'.padEnd(38)} | p50 ms  | p95 ms  | max ms  | p50 ms  | p95 ms  | max ms  |`);
    console.log(`|${'-'.repeat(40)}|---------|---------|---------|---------|---------|---------|`);
    for (const line of table) console.log(line);
    console.log('');
    console.log(`| ${'recordSightings (1-3 faces, in trx)'.padEnd(38)} | ${pct(incr, 50).toFixed(1).padStart(7)} | ${pct(incr, 95).toFixed(1).padStart(7)} | ${incr[incr.length - 1].toFixed(1).padStart(7)} |`);
    console.log(`aggregate path CPU per capture: ${cpuPerCapture.bench.toFixed(2)} ms in this process, ${cpuPerCapture.mariadb.toFixed(2)} ms in MariaDB`);
    console.log('');
    if (rebuildSeconds !== null) console.log(`rebuild of all ${STORES} stores (a year each): ${rebuildSeconds.toFixed(1)} s`);
    const [slowest, p95] = [...cacheOffP95].reduce((a, b) => (b[1] > a[1] ? b : a));
    console.log(`analytics cache-off p95 max: ${p95.toFixed(1)} ms (${slowest})`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
