/**
 * `npm start`: everything on one machine (src/service.ts): the database created if missing and
 * migrated, the bundled Chroma unless CHROMA_URL is set, the API and the worker processes, all
 * supervised. Ctrl-C / SIGTERM drains the API and the workers, then stops Chroma; a second signal
 * exits at once.
 */
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { startService } from './service.js';
import { adminKeyProblem } from './storage/repositories/apiKeys.js';

/** How long the API and the workers may take to finish their requests and jobs on shutdown. */
const DRAIN_MS = 30_000;

async function main(): Promise<void> {
  const config = loadConfig();
  // The API would refuse it at every restart: refuse it once, before starting anything.
  const unsafeAdminKey = config.FACEPERKS_ADMIN_KEY === undefined ? null : adminKeyProblem(config.FACEPERKS_ADMIN_KEY);
  if (unsafeAdminKey) throw new ConfigError(unsafeAdminKey);
  const logger = createLogger(config.LOG_LEVEL, 'supervisor');
  const service = await startService({ env: process.env, logger });
  logger.info({ port: config.PORT }, `FacePerks running: http://127.0.0.1:${config.PORT} (Bull Board at /admin/queues)`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      service.kill();
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down: draining API and workers, then Chroma');
    await service.stop(DRAIN_MS);
    process.exit(0);
  };
  // The children have process groups of their own (src/supervisor.ts): a closed terminal reaches only this process.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void shutdown(signal));
}

main().catch((error) => {
  console.error(error instanceof ConfigError ? error.message : `faceperks failed to start: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
});
