/**
 * Real services for integration tests: a fresh MariaDB database per test file, a private queue
 * prefix on the shared Redis (its keys removed at cleanup), and the data directory under a temp folder.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { loadConfig, type Config } from '../../src/config.js';
import { connectDatabase, ensureDatabase, migrateLatest } from '../../src/storage/db.js';
import { removeQueueKeys } from '../../scripts/queue-keys.js';

export const SHARED_DIR = process.env.FACEPERKS_SHARED_DIR ?? path.resolve(import.meta.dirname, '../../../shared');

export type TestEnvironment = { config: Config; db: Knex; cleanup(): Promise<void> };

/** Env overrides for a test config; MODELS_DIR stays the project's cache so models are fetched once. */
export async function createTestEnvironment(overrides: Record<string, string> = {}): Promise<TestEnvironment> {
  const suffix = randomBytes(4).toString('hex');
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `faceperks-test-${suffix}-`));
  const base = loadConfig(process.env);
  const url = new URL(base.DATABASE_URL);
  url.pathname = `/fp_test_${suffix}`;
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: url.toString(),
    DATA_DIR: dataDir,
    MODELS_DIR: process.env.MODELS_DIR ?? path.resolve(import.meta.dirname, '../../data/models'),
    QUEUE_PREFIX: `fptest${suffix}`,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    ...overrides,
  });
  await ensureDatabase(config);
  const db = connectDatabase(config);
  await migrateLatest(db);
  return {
    config,
    db,
    async cleanup() {
      // A test's own Redis may be stopped by now: its keys went with it.
      await removeQueueKeys(config.REDIS_URL, config.QUEUE_PREFIX).catch(() => undefined);
      await db.raw('DROP DATABASE IF EXISTS ??', [config.databaseName]);
      await db.destroy();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}
