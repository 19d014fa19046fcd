/**
 * A fault of the blob store at intake is the server's, never the upload's: a full disk answers 507
 * insufficient_storage, any other fault 503 storage_unavailable, both with Retry-After, and nothing
 * half-written stays behind. Real faults only: a tmpfs that is really full or read-only (mounted
 * here, which needs root), a folder replaced by a file, an S3 server that went away.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startS3Server, type S3TestServer } from '../../scripts/s3-server.js';
import { ApiClient } from '../../src/cli/http.js';
import { makeImage, multipart, seedTenant, startTestApi, upload, type TestApi } from './support.js';

/** Whether this process may mount a tmpfs (root, or CAP_SYS_ADMIN). */
async function canMountTmpfs(): Promise<boolean> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceperks-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
const mountable = await canMountTmpfs();
const needsMount = mountable ? '' : ' [skipped: mounting a tmpfs is not permitted here (needs root or CAP_SYS_ADMIN)]';

const stagedFiles = (dir: string) => fs.readdir(dir).catch(() => [] as string[]);

/** Staged files of a failed request are dropped once its other parts settle, just after the answer. */
async function expectNoStagedFiles(dir: string): Promise<void> {
  for (let waited = 0; waited < 2000 && (await stagedFiles(dir)).length > 0; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(await stagedFiles(dir)).toEqual([]);
}

function expectStorageError(response: { status: number; body: any; headers: Headers }, kind: 'full' | 'unavailable'): void {
  const [status, code, retryAfter] = kind === 'full' ? [507, 'insufficient_storage', '60'] : [503, 'storage_unavailable', '10'];
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.body).toEqual({ error: { code, message: expect.any(String) } });
  expect(response.headers.get('retry-after')).toBe(retryAfter);
}

describe('local disk faults at intake', () => {
  let t: TestApi;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;
  let blobsDir: string;
  let stagingDir: string;
  const capturesOf = async (deviceId: string) => Number((await t.env.db('captures').where({ device_id: deviceId }).count({ n: '*' }))[0].n);

  beforeAll(async () => {
    t = await startTestApi();
    tenant = await seedTenant(t, 'Disk');
    blobsDir = t.env.config.blobsDir;
    stagingDir = path.join(blobsDir, 'tmp');
    await fs.mkdir(blobsDir, { recursive: true });
  });
  afterAll(async () => {
    if (mountable) execFileSync('umount', ['-l', blobsDir], { stdio: 'ignore' });
    await t?.close();
  });

  describe.skipIf(!mountable)('on a small tmpfs', () => {
    beforeAll(() => {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', blobsDir]);
    });

    it(`a full disk answers 507 with Retry-After, records nothing and leaves no staged file${needsMount}`, async () => {
      const small = await makeImage('jpeg', 64);
      const big = await makeImage('jpeg', 400, { noise: true });
      expect(big.length).toBeGreaterThan(64 * 1024);
      const r = await upload(t, tenant.deviceKey, [
        { name: 'images', file: small },
        { name: 'images', file: big },
      ]);
      expectStorageError(r, 'full');
      await expectNoStagedFiles(stagingDir);
      expect(await capturesOf(tenant.deviceId)).toBe(0);

      // What fits is still taken.
      expect((await upload(t, tenant.deviceKey, [{ name: 'images', file: small }])).status).toBe(202);
    });

    it(`the CLI waits as long as a 507's Retry-After says before sending again${needsMount}`, async () => {
      const { body, contentType } = multipart([{ name: 'images', file: await makeImage('jpeg', 400, { noise: true }) }]);
      const client = new ApiClient(t.url, tenant.deviceKey, { attempts: 3, baseDelayMs: 10, maxDelayMs: 100 });
      const stop = new AbortController();
      const retries: { delayMs: number; reason: string }[] = [];
      const sent = client.request({
        method: 'POST',
        path: '/v1/captures',
        body: { bytes: body, contentType },
        idempotent: false,
        signal: stop.signal,
        onRetry: (retry) => {
          retries.push(retry);
          stop.abort(new Error('seen the retry'));
        },
      });
      await expect(sent).rejects.toThrow('seen the retry');
      expect(retries).toHaveLength(1);
      expect(retries[0].reason).toBe('507 insufficient_storage');
      expect(retries[0].delayMs).toBeGreaterThanOrEqual(60_000);
    });

    it(`a read-only disk answers 503 and /readyz says so until it is writable again${needsMount}`, async () => {
      execFileSync('mount', ['-o', 'remount,ro', blobsDir]);
      try {
        const r = await upload(t, tenant.deviceKey, [{ name: 'images', file: await makeImage('png', 32) }]);
        expectStorageError(r, 'unavailable');
        expect((await t.call('GET', '/readyz', { key: t.adminKey })).body.checks.blobs).toMatch(/EROFS/);
      } finally {
        execFileSync('mount', ['-o', 'remount,rw', blobsDir]);
      }
      expect((await t.call('GET', '/readyz')).body.checks.blobs).toBe('ok');
    });
  });

  it('an unusable folder (a file where the staging folder should be) answers 503 on every upload route', async () => {
    const before = await capturesOf(tenant.deviceId);
    await fs.rm(stagingDir, { recursive: true, force: true });
    await fs.writeFile(stagingDir, 'not a folder');
    try {
      const image = await makeImage('jpeg', 48);
      expectStorageError(await upload(t, tenant.deviceKey, [{ name: 'images', file: image }]), 'unavailable');

      const person = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Ada' } });
      expectStorageError(await upload(t, tenant.merchantKey, [{ name: 'image', file: image }], `/v1/people/${person.body.id}/faces`), 'unavailable');
      expectStorageError(await upload(t, tenant.merchantKey, [{ name: 'image', file: image }], '/v1/identify'), 'unavailable');
      expect(await capturesOf(tenant.deviceId)).toBe(before);
    } finally {
      await fs.rm(stagingDir, { force: true });
    }
    expect((await upload(t, tenant.deviceKey, [{ name: 'images', file: await makeImage('jpeg', 48) }])).status).toBe(202);
  });
});

describe('uploads on S3', () => {
  let t: TestApi;
  let s3: S3TestServer;
  let s3Dir: string;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;

  beforeAll(async () => {
    s3Dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceperks-s3-intake-'));
    s3 = await startS3Server({ directory: s3Dir });
    for (const [name, value] of Object.entries(s3.env)) vi.stubEnv(name, value);
    t = await startTestApi({ env: s3.env });
    tenant = await seedTenant(t, 'Cloud');
  });
  afterAll(async () => {
    await t?.close();
    await s3?.stop();
    vi.unstubAllEnvs();
    await fs.rm(s3Dir, { recursive: true, force: true });
  });

  it('stores an upload in the bucket at its content address, staging nothing on shared disk', async () => {
    const image = await makeImage('jpeg', 80, { noise: true });
    const r = await upload(t, tenant.deviceKey, [{ name: 'images', file: image }]);
    expect(r.status).toBe(202);
    const { blob_key: key } = await t.env.db('captures').where({ id: r.body.captures[0].id }).first('blob_key');
    expect(key).toBe(`captures/${r.body.captures[0].sha256.slice(0, 2)}/${r.body.captures[0].sha256}`);
    expect((await t.blobs.get(key)).equals(image)).toBe(true);
    expect(await stagedFiles(path.join(t.env.config.DATA_DIR, 'tmp'))).toEqual([]);
    await expect(fs.access(t.env.config.blobsDir)).rejects.toThrow(/ENOENT/);
    expect((await t.call('GET', '/readyz')).body.checks.blobs).toBe('ok');
  });

  it('answers 503 while the object store is away, and the resent upload is stored once it is back', async () => {
    const image = await makeImage('jpeg', 80, { noise: true });
    await s3.stop();
    const r = await upload(t, tenant.deviceKey, [{ name: 'images', file: image }]);
    expectStorageError(r, 'unavailable');
    await expectNoStagedFiles(path.join(t.env.config.DATA_DIR, 'tmp'));
    expect((await t.call('GET', '/readyz')).body.checks.blobs).not.toBe('ok');
    // Recorded before its commit failed, then taken back: no capture waits for an image that may never come.
    const sha256 = createHash('sha256').update(image).digest('hex');
    expect(await t.env.db('captures').where({ sha256 }).count({ n: '*' })).toEqual([{ n: 0 }]);
    expect(await t.env.db('batches').where({ device_id: tenant.deviceId }).count({ n: '*' })).toEqual([{ n: 1 }]);

    s3 = await startS3Server({ directory: s3Dir, port: s3.port });
    const again = await upload(t, tenant.deviceKey, [{ name: 'images', file: image }]);
    expect(again.status).toBe(202);
    expect(again.body.captures[0]).toMatchObject({ status: 'queued', duplicate: false });
    const { blob_key: key } = await t.env.db('captures').where({ id: again.body.captures[0].id }).first('blob_key');
    expect((await t.blobs.get(key)).equals(image)).toBe(true);
  });
});
