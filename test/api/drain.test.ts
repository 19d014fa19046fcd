/**
 * The API process's drain (src/api/main.ts run as `npm run api` runs it, here through tsx): after
 * SIGTERM it answers /readyz 503 for SHUTDOWN_UNREADY_MS while still serving, then stops listening
 * and finishes the requests it had open before exiting 0; a second signal exits at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../pipeline/support.js';
import { freePort } from '../support/global-setup.js';
import { createTestEnvironment, type TestEnvironment } from '../support/services.js';

const root = path.resolve(import.meta.dirname, '../..');
const adminKey = randomBytes(24).toString('hex');
let env: TestEnvironment;
let child: ChildProcess | undefined;

beforeAll(async () => {
  env = await createTestEnvironment();
});

afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
});

afterAll(async () => {
  await env?.cleanup();
});

type Api = { url: string; port: number; process: ChildProcess; exited: Promise<{ code: number | null; at: number }> };

async function startApi(unreadyMs: number): Promise<Api> {
  const port = await freePort();
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/api/main.ts'], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: env.config.DATABASE_URL,
      DATA_DIR: env.config.DATA_DIR,
      QUEUE_PREFIX: env.config.QUEUE_PREFIX,
      CHROMA_URL: env.config.chromaUrl,
      PORT: String(port),
      FACEPERKS_ADMIN_KEY: adminKey,
      SHUTDOWN_UNREADY_MS: String(unreadyMs),
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  child = proc;
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => proc.once('exit', (code) => resolve({ code, at: Date.now() })));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(() => fetch(`${url}/readyz`).then((r) => r.ok, () => false), 60_000, 'the API to be ready');
  return { url, port, process: proc, exited };
}

/** A POST /v1/merchants whose body is sent only in part until `finish()`: a request the API has open. */
async function heldRequest(api: Api) {
  let held!: http.ClientRequest;
  let written!: () => void;
  const sent = new Promise<void>((resolve) => (written = resolve));
  const body = Buffer.from(JSON.stringify({ name: 'Drain Co' }));
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const request = http.request(
      `${api.url}/v1/merchants`,
      { method: 'POST', agent: false, headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json', 'content-length': body.length } },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, body: text }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.write(body.subarray(0, 5), () => written());
    held = request;
  });
  answer.catch(() => undefined);
  await sent;
  return { answer, finish: () => held.end(body.subarray(5)) };
}

/** The server has stopped accepting connections once a fresh one is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (response) => {
      response.resume();
      resolve(false);
    });
    request.on('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

describe('the API process on SIGTERM', () => {
  it('turns unready for SHUTDOWN_UNREADY_MS, stops listening, finishes its open request, then exits 0', async () => {
    const api = await startApi(2000);
    const open = await heldRequest(api);
    // Its headers and part of its body are sent; a request on a later connection answered shows the
    // server has accepted the earlier one.
    await waitFor(async () => (await fetch(`${api.url}/readyz`)).ok, 10_000, 'ready');

    const signalledAt = Date.now();
    api.process.kill('SIGTERM');
    const unready = await waitFor(async () => {
      const r = await fetch(`${api.url}/readyz`, { headers: { connection: 'close' } });
      return r.status === 503 ? ((await r.json()) as { checks: Record<string, string> }) : undefined;
    }, 5000, '/readyz to answer 503');
    expect(unready.checks.accepting).not.toBe('ok');
    // Still serving everything else while unready (a load balancer is taking it out of rotation).
    expect((await fetch(`${api.url}/healthz`, { headers: { connection: 'close' } })).status).toBe(200);

    await waitFor(() => refused(api.port), 30_000, 'the listener to close');
    // Not before the unready time had passed (the timer starts on the signal, after our kill()).
    expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(1900);
    expect(api.process.exitCode).toBeNull();
    open.finish();

    const answer = await open.answer;
    expect(answer.status, answer.body).toBe(201);
    expect(await env.db('merchants').where({ id: JSON.parse(answer.body).id }).first('name')).toEqual({ name: 'Drain Co' });
    const exit = await api.exited;
    expect(exit.code).toBe(0);
  });

  it('exits at once on a second signal, without waiting for the drain', async () => {
    const api = await startApi(60_000);
    const open = await heldRequest(api);
    await waitFor(async () => (await fetch(`${api.url}/readyz`)).ok, 10_000, 'ready');

    api.process.kill('SIGTERM');
    await waitFor(async () => (await fetch(`${api.url}/readyz`, { headers: { connection: 'close' } })).status === 503, 5000, '/readyz to answer 503');
    const secondAt = Date.now();
    api.process.kill('SIGINT');

    const exit = await api.exited;
    expect(exit.code).toBe(1);
    // Far less than the 60 s of unreadiness a single signal would have waited.
    expect(exit.at - secondAt).toBeLessThan(10_000);
    await expect(open.answer).rejects.toThrow();
  });
});
