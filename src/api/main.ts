/**
 * `npm run api`: the API alone, for several-machine deployments (workers run elsewhere against the
 * same Redis, MySQL and Chroma). Creates the database if missing, migrates, makes sure an admin key
 * exists (printing a generated one once), listens, and drains on SIGTERM/SIGINT.
 */
import fs from 'node:fs/promises';
import type { Server } from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Knex } from 'knex';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { ChromaGallery } from '../gallery/chroma-gallery.js';
import { createLogger, type Logger } from '../logger.js';
import { createQueues, type Queues } from '../queue/queues.js';
import { openBlobStore } from '../storage/blobs.js';
import { connectDatabase, ensureDatabase, migrateLatest } from '../storage/db.js';
import { withQueuePrefix } from '../storage/settings.js';
import { adminKeyProblem, bootstrapAdminKey } from '../storage/repositories/apiKeys.js';
import { createApp, type AppDeps } from './app.js';
import { defaultReadinessChecks } from './readiness.js';

export { bootstrapAdminKey };

/** The file under DATA_DIR that receives a generated admin key: logs are kept and shipped, a 0600 file is not. */
export const ADMIN_KEY_FILE = 'admin-key';

/** Writes a freshly generated admin key to DATA_DIR/admin-key (mode 0600) and prints only where it is. */
export async function announceAdminKey(result: Awaited<ReturnType<typeof bootstrapAdminKey>>, options: { dataDir: string; logger: Logger }): Promise<void> {
  if (result.source !== 'generated') {
    options.logger.info({ source: result.source }, 'admin key ready');
    return;
  }
  const file = path.join(options.dataDir, ADMIN_KEY_FILE);
  await fs.mkdir(options.dataDir, { recursive: true });
  // Created afresh, so a file left with wider permissions is not reused.
  await fs.rm(file, { force: true });
  await fs.writeFile(file, `${result.key}\n`, { mode: 0o600, flag: 'wx' });
  process.stdout.write(
    `\nFacePerks admin key generated and written to ${file} (mode 0600): store it, then delete the file; set FACEPERKS_ADMIN_KEY to choose your own.\n\n`,
  );
}

export type RunningApi = { server: Server; close(): Promise<void> };

/**
 * Server settings for the API: generous request time for slow robot links, bounded header time,
 * and protocol-level errors (malformed HTTP, oversized headers) answered in the error schema
 * instead of Node's bare 400.
 */
export function hardenServer(server: Server): void {
  server.requestTimeout = 10 * 60_000;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (error.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    const [status, reason, code] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'headers_too_large']
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'request_timeout']
          : [400, 'Bad Request', 'bad_request'];
    const body = JSON.stringify({ error: { code, message: `malformed or incomplete HTTP request (${error.code ?? 'parse error'})` } });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}

/** Listens with an app built from `deps`; `close()` stops accepting, drains open requests, then returns. */
export async function listen(deps: AppDeps, port: number, host?: string): Promise<RunningApi> {
  const app = createApp(deps);
  const server = app.listen(port, host);
  hardenServer(server);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Requests still running after 25 s are cut (uploads are recorded whole or not at all).
        setTimeout(() => server.closeAllConnections(), 25_000).unref();
      }),
  };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  // Refused before anything else starts: a published or short key would make anyone admin.
  const unsafeAdminKey = config.FACEPERKS_ADMIN_KEY === undefined ? null : adminKeyProblem(config.FACEPERKS_ADMIN_KEY);
  if (unsafeAdminKey) {
    console.error(unsafeAdminKey);
    process.exit(2);
  }
  const logger = createLogger(config.LOG_LEVEL, 'api');
  await ensureDatabase(config);
  const db: Knex = connectDatabase(config);
  await migrateLatest(db);
  await announceAdminKey(await bootstrapAdminKey(db, config.FACEPERKS_ADMIN_KEY), { dataDir: config.DATA_DIR, logger });
  config = await withQueuePrefix(db, config);

  const queues: Queues = createQueues(config);
  const blobs = openBlobStore(config);
  // Erasure (DELETE /v1/people/:id) deletes vectors through the gallery; the API never searches it.
  const gallery = new ChromaGallery(config.chromaUrl, config.MODEL_PACK);
  let draining = false;
  const readiness = [
    ...defaultReadinessChecks({ config, db, queues, blobs }),
    {
      name: 'accepting',
      check: async () => {
        if (draining) throw new Error('shutting down');
      },
    },
  ];
  const api = await listen({ config, db, blobs, queues, logger, gallery, readiness }, config.PORT);
  logger.info({ port: config.PORT }, 'api listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    // Unready first, so a load balancer stops sending uploads before the listener closes.
    draining = true;
    await new Promise((resolve) => setTimeout(resolve, config.SHUTDOWN_UNREADY_MS));
    logger.info({ signal }, 'api stopping');
    await api.close();
    await queues.close();
    await db.destroy();
    logger.info('api stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

const isEntryPoint = process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href;
if (isEntryPoint) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
