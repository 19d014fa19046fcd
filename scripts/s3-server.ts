/**
 * An S3-compatible server on loopback for tests and benchmarks: @20minutes/s3rver (the maintained
 * fork of s3rver, a dev dependency) keeping its objects in a folder, with one bucket made at start.
 * `env` is what a FacePerks process needs to store its blobs there. In this process, or in a child
 * process of its own (startS3ServerProcess) whose CPU can be read and which can be paused.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

type S3rverOptions = {
  address: string;
  port: number;
  directory: string;
  silent: boolean;
  allowMismatchedSignatures: boolean;
  configureBuckets: { name: string; configs: string[] }[];
};
type KoaMiddleware = (ctx: unknown, next: () => Promise<void>) => Promise<void>;
type S3rver = { run(): Promise<AddressInfo>; close(): Promise<void>; httpServer: Server; middleware: KoaMiddleware[] };
// A CommonJS package without type declarations: the little used here is typed above.
const S3rver = createRequire(import.meta.url)('@20minutes/s3rver') as new (options: S3rverOptions) => S3rver;

/** The key pair s3rver accepts. */
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

export type S3TestServer = {
  endpoint: string;
  port: number;
  bucket: string;
  /** Where the server keeps the bucket's objects. */
  directory: string;
  /** BLOB_URL, AWS_ENDPOINT_URL_S3, AWS_REGION and the credentials. */
  env: Record<string, string>;
  /** Closes the server (and its open connections); removes the folder unless the caller gave it. Once is enough. */
  stop(): Promise<void>;
};

/** `latencyMs`: each request waits this long before it is handled, as if the store were across a network. */
export type S3ServerOptions = { bucket?: string; prefix?: string; port?: number; directory?: string; latencyMs?: number };

/**
 * s3rver's request logger (koa-logger, its first middleware) runs even when the server is silent:
 * it wraps every streamed answer in a byte-counting stream and formats a line that winston then
 * drops: about a quarter of the server's CPU per request, which a benchmark would otherwise charge
 * to the service (docs/benchmarks.md, session 16).
 */
function dropRequestLogger(server: S3rver): void {
  const index = server.middleware.findIndex((middleware) => middleware.name === 'logger');
  if (index === -1) throw new Error("s3rver's request logger was not found: has its middleware changed?");
  server.middleware.splice(index, 1);
}

export async function startS3Server(options: S3ServerOptions = {}): Promise<S3TestServer> {
  const bucket = options.bucket ?? 'faceperks-test';
  const prefix = options.prefix ?? 'blobs';
  const directory = options.directory ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'faceperks-s3-')));
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port ?? 0,
    directory,
    silent: true,
    // s3rver signs bucket-level requests (list, head bucket, multi-delete) without the trailing slash
    // that SDK v3 signs with path-style addressing, so it would refuse them; object requests match.
    allowMismatchedSignatures: true,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  dropRequestLogger(server);
  if (options.latencyMs) {
    const latencyMs = options.latencyMs;
    // First in s3rver's Koa chain (composed when it starts listening), before any of its own work.
    server.middleware.unshift(async (_ctx, next) => {
      await new Promise((resolve) => setTimeout(resolve, latencyMs));
      await next();
    });
  }
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  let stopped: Promise<void> | undefined;
  const stop = async () => {
    server.httpServer.closeAllConnections();
    await server.close();
    if (!options.directory) await fs.rm(directory, { recursive: true, force: true });
  };
  return {
    endpoint,
    port,
    bucket,
    directory,
    env: { BLOB_URL: `s3://${bucket}/${prefix}`, AWS_ENDPOINT_URL_S3: endpoint, AWS_REGION: 'us-east-1', ...CREDENTIALS },
    stop: () => (stopped ??= stop()),
  };
}

export type S3ServerProcess = { pid: number; env: Record<string, string>; stop(): Promise<void> };

/**
 * startS3Server in a child process, in a session of its own like the service's processes: with
 * Linux autogroups a session is the unit that shares the CPU, so the object store does not share
 * its parent's. The child stops when its IPC channel closes: at stop(), or when the parent exits
 * however it does. Given the same port and directory, a new one serves the objects an earlier kept.
 */
export async function startS3ServerProcess(options: S3ServerOptions = {}): Promise<S3ServerProcess> {
  const starter = pathToFileURL(path.join(import.meta.dirname, 's3-server.ts')).href;
  const code = [
    `const { startS3Server } = await import(${JSON.stringify(starter)});`,
    `const server = await startS3Server(${JSON.stringify(options)});`,
    "process.once('disconnect', async () => { await server.stop(); process.exit(0); });",
    'process.send(server.env);',
  ].join('\n');
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', code], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const env = await new Promise<Record<string, string>>((resolve, reject) => {
    child.once('message', (message) => resolve(message as Record<string, string>));
    child.once('exit', (code) => reject(new Error(`the S3 test server exited with code ${code} before it was ready`)));
  });
  return {
    pid: child.pid!,
    env,
    async stop() {
      if (child.connected) child.disconnect();
      await exited;
    },
  };
}
