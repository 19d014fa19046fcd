/**
 * Back-pressure fails open (issue 18): with Redis down, intake still records an upload (202) in
 * MySQL, and the sweeper enqueues it once Redis is back. The service runs on a redis-server of
 * this test's own (the shared one on 6379 is never touched), stopped and started again empty.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueues } from '../../src/queue/queues.js';
import { startWorkers, WORKER_NAMES, type RunningWorkers } from '../../workers/runner.js';
import type { WorkerContext } from '../../workers/context.js';
import { makeImage, seedTenant } from '../api/support.js';
import { freePort } from '../support/global-setup.js';
import { startTestService, waitFor, type TestService } from './support.js';
import { upload } from '../api/support.js';

let port: number;
let redis: ChildProcess | undefined;
let t: TestService | undefined;
let workers: RunningWorkers | undefined;
let workerContext: WorkerContext | undefined;

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

async function startRedis(): Promise<void> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  redis = child;
  // Not left behind when a hook times out and the test process ends without stopping it.
  process.once('exit', () => child.kill('SIGKILL'));
  await waitFor(async () => (child.exitCode === null ? accepts(port) : Promise.reject(new Error(`redis-server exited ${child.exitCode}`))), 10_000, 'the test redis-server');
}

async function stopRedis(): Promise<void> {
  const child = redis;
  redis = undefined;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

beforeAll(async () => {
  port = await freePort();
  await startRedis();
  // The sweeper looks every 500 ms at captures open for more than 1 s.
  t = await startTestService({ REDIS_URL: `redis://127.0.0.1:${port}`, SWEEP_INTERVAL_MS: '500', SWEEP_STALE_MS: '1000', SWEEP_LOST_MS: '1000' }, { workers: false });
  // The workers (and the sweeper) on a Redis connection of their own, as in their own process.
  workerContext = { ...t.context, queues: createQueues(t.env.config) };
  workers = await startWorkers(WORKER_NAMES, workerContext);
});

afterAll(async () => {
  await workers?.close();
  await workerContext?.queues.close();
  // Not t.close(): the API's queue connection was ended on purpose, and its queues would wait for it.
  await t?.api.close();
  await t?.env.cleanup();
  await stopRedis();
});

describe('intake with Redis down or slow', () => {
  // First: it needs the API's queue connection, which the next test ends.
  it('answers an upload within its timeouts while Redis does not answer (SIGSTOP), and runs it once Redis does', async () => {
    const tenant = await seedTenant(t!, 'Slow Co');
    expect(redis!.kill('SIGSTOP')).toBe(true);
    let answer;
    const startedAt = Date.now();
    try {
      answer = await upload(t!, tenant.deviceKey, [{ name: 'images', file: await makeImage('jpeg', 64) }]);
    } finally {
      redis!.kill('SIGCONT');
    }
    expect(answer.status, JSON.stringify(answer.body)).toBe(202);
    // Answered while Redis was stopped: the guards give up after 0.5 s each and the enqueue after 3 s.
    expect(Date.now() - startedAt).toBeLessThan(20_000);
    const captureId = answer.body.captures[0].id as string;
    const done = await waitFor(async () => {
      const row = await t!.env.db('captures').where({ id: captureId }).first('status');
      return row?.status === 'done' || row?.status === 'failed' ? row.status : undefined;
    }, 30_000, 'the capture to be done');
    expect(done).toBe('done');
  });

  it('records the upload (202) and the sweeper runs it once Redis is back', async () => {
    const tenant = await seedTenant(t!, 'Outage Co');
    await stopRedis();

    const startedAt = Date.now();
    const answer = await upload(t!, tenant.deviceKey, [{ name: 'images', file: await makeImage('jpeg', 64) }]);
    expect(answer.status, JSON.stringify(answer.body)).toBe(202);
    // Bounded by the guards' and the enqueue's own timeouts, not by Redis coming back.
    expect(Date.now() - startedAt).toBeLessThan(20_000);
    const captureId = answer.body.captures[0].id as string;
    expect(await t!.env.db('captures').where({ id: captureId }).first('status', 'run')).toEqual({ status: 'queued', run: 0 });

    // The intake's own enqueue is still pending on its connection and would be sent once Redis is
    // back (job ids make that harmless); an API restarted during the outage has no such thing, and
    // only the sweeper can run the capture: that is the path shown here.
    t!.queues.connection.disconnect();
    await startRedis();
    const done = await waitFor(async () => {
      const row = await t!.env.db('captures').where({ id: captureId }).first('status', 'run');
      return row?.status === 'done' || row?.status === 'failed' ? row : undefined;
    }, 30_000, 'the capture to be swept and done');
    // Run 1: the sweeper's restart, not the intake's enqueue (Redis came back empty).
    expect(done).toEqual({ status: 'done', run: 1 });
  });

  it('lets the workers stop within their drain deadline while Redis does not answer', async () => {
    // Paused, not killed: a killed server sometimes lets BullMQ's close finish at once (its blocking
    // connection already gone); a silent one never does, so the deadline is what ends the wait.
    expect(redis!.kill('SIGSTOP')).toBe(true);
    const startedAt = Date.now();
    expect(await workers!.close({ drainMs: 1000 })).toBe(false);
    expect(Date.now() - startedAt).toBeLessThan(5_000);
    workers = undefined;
    // For afterAll: the queues' own connection closes once Redis answers again.
    expect(redis!.kill('SIGCONT')).toBe(true);
  });
});
