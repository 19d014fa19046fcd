import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import knexFactory, { type Knex } from 'knex';
import { Model } from 'objection';
import type { Config } from '../config.js';

const thisModule = fileURLToPath(import.meta.url);
/** Beside this module's tree: the sources under tsx or vitest, their compiled copies in dist/ (`npm start`). */
const migrationsDir = path.resolve(path.dirname(thisModule), '../../migrations');
/** `.ts`, or `.js` once compiled: migrations are loaded in the same form as the code loading them. */
const moduleExtension = path.extname(thisModule);

type PooledConnection = { query(sql: string, done: (error: Error | null) => void): void };

/**
 * Every transaction of the service runs at READ COMMITTED, set once per connection rather than
 * before each transaction (a statement per transaction saved on the pipeline's hot path). Locking
 * reads and range deletes then take no gap locks: the writers lock what they change first (the
 * capture, each subject, the rows they update), so gaps protected nothing there, while gap locks
 * made writers of different subjects or stores deadlock on the boundaries between their keys.
 */
const SESSION_SETUP = 'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED';

export function connectDatabase(config: Pick<Config, 'DATABASE_URL'>, pool = { min: 0, max: 10 }): Knex {
  const db = knexFactory({
    client: 'mysql2',
    // multipleStatements: writeTogether (storage/transactions.ts) sends a transaction's writes in one round trip.
    connection: { uri: config.DATABASE_URL, timezone: 'Z', dateStrings: false, supportBigNumbers: true, multipleStatements: true } as never,
    pool: {
      ...pool,
      afterCreate: (connection: PooledConnection, done: (error: Error | null, connection: PooledConnection) => void) =>
        connection.query(SESSION_SETUP, (error) => done(error, connection)),
    },
  });
  Model.knex(db);
  return db;
}

/** Creates the database named in DATABASE_URL when it is missing (first start on a fresh server). */
export async function ensureDatabase(config: Pick<Config, 'DATABASE_URL' | 'databaseName'>): Promise<void> {
  const url = new URL(config.DATABASE_URL);
  url.pathname = '/';
  const server = knexFactory({ client: 'mysql2', connection: url.toString(), pool: { min: 0, max: 1 } });
  try {
    await server.raw('CREATE DATABASE IF NOT EXISTS ?? CHARACTER SET utf8mb4 COLLATE utf8mb4_bin', [config.databaseName]);
  } finally {
    await server.destroy();
  }
}

type Migration = { up(knex: Knex): Promise<void>; down(knex: Knex): Promise<void> };

/**
 * Migrations are imported by our own code rather than by knex, so that whichever TypeScript loader
 * runs the process (tsx, or vitest's module runner) also loads them. Each keeps the name of its
 * source file (`….ts`), the name every database has recorded, whichever form is loaded.
 */
const migrationSource: Knex.MigrationSource<string> = {
  async getMigrations() {
    const files = (await fs.readdir(migrationsDir)).filter((file) => /^\d+_.+/.test(file) && path.extname(file) === moduleExtension);
    return files.map((file) => `${path.basename(file, moduleExtension)}.ts`).sort();
  },
  getMigrationName: (name) => name,
  async getMigration(name) {
    const file = `${path.basename(name, '.ts')}${moduleExtension}`;
    return (await import(pathToFileURL(path.join(migrationsDir, file)).href)) as Migration;
  },
};

export async function migrateLatest(db: Knex): Promise<void> {
  await db.migrate.latest({ migrationSource });
}
