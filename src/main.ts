/**
 * `npm start`: everything on one machine. Creates the database if missing, migrates, starts the
 * bundled Chroma unless CHROMA_URL is set, then the API and the worker processes, all supervised.
 * Ctrl-C / SIGTERM drains and stops everything; a second signal exits at once.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from './config.js';
import { startLocalChroma, type LocalChroma } from './gallery/local-server.js';
import { createLogger } from './logger.js';
import { connectDatabase, ensureDatabase, migrateLatest } from './storage/db.js';
import { serviceSpecs, Supervisor } from './supervisor.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');


async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL, 'supervisor');

  await ensureDatabase(config);
  const db = connectDatabase(config, { min: 0, max: 1 });
  await migrateLatest(db);
  await db.destroy();

  let chroma: LocalChroma | undefined;
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (!config.CHROMA_URL) {
    chroma = await startLocalChroma(config.chromaDir, config.CHROMA_PORT);
    env.CHROMA_URL = chroma.url;
    logger.info({ url: chroma.url, dataDir: config.chromaDir }, 'local chroma started');
  }

  const supervisor = new Supervisor(root, env, logger);
  for (const spec of serviceSpecs(root, config)) supervisor.start(spec);
  logger.info({ port: config.PORT }, `FacePerks running: http://127.0.0.1:${config.PORT} (Bull Board at /admin/queues)`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      supervisor.killAll();
      await chroma?.stop();
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down: draining API and workers');
    await supervisor.stop(30_000);
    await chroma?.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((error) => {
  console.error(error instanceof ConfigError ? error.message : `faceperks failed to start: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
});
