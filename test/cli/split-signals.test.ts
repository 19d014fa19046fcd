/**
 * `faceperks upload` as a child process against the API (no workers needed: uploads are only
 * recorded): a batch the server refuses as too large (413) is split and sent again until every file
 * is on the server; SIGINT stops the run with exit 130; --quiet keeps stderr empty.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, seedTenant, startTestApi, type TestApi } from '../api/support.js';
import { runCli, startCli, startProxy, writeFiles } from './support.js';

let t: TestApi;
let tenant: Awaited<ReturnType<typeof seedTenant>>;
let root: string;

beforeAll(async () => {
  // Two files per request at most: a batch of seven is refused with 413 too_many_files.
  t = await startTestApi({ env: { MAX_UPLOAD_FILES: '2' } });
  tenant = await seedTenant(t, 'Split Co');
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'faceperks-cli-split-'));
});

afterAll(async () => {
  await t?.close();
  if (root) await fs.rm(root, { recursive: true, force: true });
});

async function newDevice(name: string): Promise<{ key: string; id: string }> {
  const r = await t.call('POST', `/v1/stores/${tenant.storeId}/devices`, { key: tenant.merchantKey, json: { name } });
  expect(r.status).toBe(201);
  return { key: r.body.key, id: r.body.id };
}

async function imagesIn(dir: string, count: number): Promise<void> {
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < count; i++) files[`img${i}.jpg`] = await makeImage('jpeg', 48);
  await writeFiles(dir, files);
}

const uploadArgs = (dir: string, url: string, key: string, ...extra: string[]) => ['upload', dir, '--url', url, '--device-key', key, '--batch-size', '8', '--concurrency', '1', ...extra];

async function splitRun(name: string, ...extra: string[]) {
  const device = await newDevice(name);
  const dir = path.join(root, name);
  await imagesIn(dir, 7);
  const proxy = await startProxy(t.url);
  try {
    const result = await runCli(uploadArgs(dir, proxy.url, device.key, ...extra));
    const uploads = proxy.seen.filter((s) => s.path === '/v1/captures').map((s) => s.status);
    const captures = await t.env.db('captures').where({ device_id: device.id }).select('sha256');
    return { result, uploads, captures };
  } finally {
    await proxy.close();
  }
}

describe('faceperks upload', () => {
  it('splits a batch refused as too large (413) and sends the halves until every file is on the server once', async () => {
    const { result, uploads, captures } = await splitRun('robot-split');

    expect(result.code, result.stderr).toBe(0);
    // 7 files → 413; 4 → 413; 2 and 2 → 202; 3 → 413; 2 and 1 → 202.
    expect(uploads).toEqual([413, 413, 202, 202, 413, 202, 202]);
    expect(captures).toHaveLength(7);
    expect(new Set(captures.map((c) => c.sha256)).size).toBe(7);
    expect(result.stderr).toContain('splitting it in two');
  });

  it('--quiet writes nothing on stderr, even while splitting', async () => {
    const { result, uploads, captures } = await splitRun('robot-quiet', '--quiet');

    expect(result.code).toBe(0);
    expect(uploads).toContain(413);
    expect(captures).toHaveLength(7);
    expect(result.stderr).toBe('');
    expect(result.stdout).not.toBe('');
  });

  it('exits 130 on SIGINT in the middle of an upload', async () => {
    const device = await newDevice('robot-interrupted');
    const dir = path.join(root, 'interrupted');
    await imagesIn(dir, 3);
    let reached!: () => void;
    const uploading = new Promise<void>((resolve) => (reached = resolve));
    // Uploads are held by the proxy (never answered), so the signal comes while one is in flight.
    const proxy = await startProxy(t.url, (req) => {
      if (req.url !== '/v1/captures') return 'forward';
      reached();
      return new Promise(() => undefined);
    });
    try {
      const run = startCli(uploadArgs(dir, proxy.url, device.key));
      await uploading;
      const signalledAt = Date.now();
      run.child.kill('SIGINT');
      const result = await run.done;

      expect([result.code, result.signal]).toEqual([130, null]);
      expect(result.stderr).toContain('SIGINT: stopping');
      expect(Date.now() - signalledAt).toBeLessThan(15_000);
      expect(await t.env.db('captures').where({ device_id: device.id }).count({ n: '*' })).toEqual([{ n: 0 }]);
    } finally {
      await proxy.close();
    }
  });
});
