/**
 * Recomputes visits and rollups from sightings.
 *   npm run analytics:rebuild -- --store <id> --from 2026-01-01T00:00:00Z --to 2026-02-01T00:00:00Z
 *   npm run analytics:rebuild -- --all --from … --to …      (every store)
 * A bare date (YYYY-MM-DD) means midnight UTC. Uses VISIT_GAP_MINUTES unless --gap is given.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import { rebuildAnalytics } from '../src/services/analytics/rebuild.js';
import { connectDatabase, migrateLatest } from '../src/storage/db.js';

const { values } = parseArgs({
  options: {
    store: { type: 'string', multiple: true },
    all: { type: 'boolean', default: false },
    from: { type: 'string' },
    to: { type: 'string' },
    gap: { type: 'string' },
  },
});

function instant(value: string | undefined, name: string): Date {
  if (!value) throw new Error(`--${name} is required`);
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(t)) throw new Error(`--${name}: not an ISO-8601 instant: ${value}`);
  return new Date(t);
}

async function main(): Promise<void> {
  const config = loadConfig();
  const from = instant(values.from, 'from');
  const to = instant(values.to, 'to');
  const gap = values.gap ? Number(values.gap) : config.VISIT_GAP_MINUTES;
  if (!Number.isInteger(gap) || gap <= 0) throw new Error('--gap must be a positive whole number of minutes');
  const db = connectDatabase(config);
  try {
    await migrateLatest(db);
    const stores: string[] = values.all ? (await db('stores').orderBy('id').pluck('id')) : (values.store ?? []);
    if (stores.length === 0) throw new Error('name a store with --store <id> (repeatable) or use --all');
    for (const storeId of stores) {
      const started = Date.now();
      const result = await rebuildAnalytics(db, { storeId, from, to, visitGapMinutes: gap });
      console.log(JSON.stringify({ storeId, ...result, ms: Date.now() - started }));
    }
  } finally {
    await db.destroy();
  }
}

main().catch((error) => {
  console.error(`analytics:rebuild: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
