/**
 * `faceperks upload` as a real child process against the real service (API + every worker on
 * MariaDB, Redis, Chroma and the default models): a directory tree followed to the end, a rerun
 * that sends nothing, bad files, 429/503/connection resets on the way, and a kill mid-upload.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import { listen } from '../../src/api/main.js';
import { makeImage, seedTenant, upload } from '../api/support.js';
import { cropAround, facesIn, fixture, startTestService, waitFor, type TestService } from '../pipeline/support.js';
import { runCli, startCli, startProxy, writeFiles, type Decision } from './support.js';

let t: TestService;
let root: string;

type Tenant = Awaited<ReturnType<typeof seedTenant>>;

async function newDevice(t: TestService, tenant: Tenant, name: string): Promise<string> {
  const r = await t.call('POST', `/v1/stores/${tenant.storeId}/devices`, { key: tenant.merchantKey, json: { name } });
  expect(r.status).toBe(201);
  return r.body.key;
}

/** Every capture row of a device, straight from MySQL (the source of truth). */
async function capturesOf(deviceId: string): Promise<{ id: string; sha256: string; status: string }[]> {
  return t.env.db('captures').where({ device_id: deviceId }).select('id', 'sha256', 'status');
}

async function deviceIdOf(tenant: Tenant, key: string): Promise<string> {
  const list = await t.call('GET', `/v1/stores/${tenant.storeId}/devices`, { key: tenant.merchantKey });
  const before = new Set(list.body.devices.map((d: { id: string }) => d.id));
  // The newest device of the store whose key this is: ask the lookup with an image only it sent.
  const probe = await makeImage('png', 32);
  const r = await upload(t, key, [{ name: 'images', file: probe, filename: 'probe.png' }]);
  expect(r.status).toBe(202);
  const row = await t.env.db('captures').where({ id: r.body.captures[0].id }).first('device_id');
  expect(before.has(row.device_id)).toBe(true);
  return row.device_id;
}

const cli = (dir: string | string[], key: string, url: string, ...extra: string[]) =>
  runCli(['upload', ...(Array.isArray(dir) ? dir : [dir]), '--url', url, '--device-key', key, '--json', ...extra]);

beforeAll(async () => {
  // Images kept after processing, so that reprocessing them is deterministic (with KEEP_IMAGES=false
  // the retention sweep may or may not have deleted them by then).
  t = await startTestService({ KEEP_IMAGES: 'true' });
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'faceperks-cli-'));
}, 180_000);

afterAll(async () => {
  await t?.close();
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe('faceperks upload against the real service', () => {
  let tenant: Tenant;
  let memberId: string;
  const tree = () => path.join(root, 'tree');

  beforeAll(async () => {
    tenant = await seedTenant(t, 'CLI Co');
    // A member enrolled from the largest face of the group photo, so the summary has a recognition.
    const group = await fixture('sample1.jpg');
    const faces = await facesIn(group, t.env.config.modelsDir);
    const person = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Grace' } });
    memberId = person.body.id;
    const portrait = await cropAround(group, faces[0], 0.6, 400);
    const enrol = await upload(t, tenant.merchantKey, [{ name: 'image', file: portrait, filename: 'grace.jpg' }], `/v1/people/${memberId}/faces`);
    expect(enrol.status, JSON.stringify(enrol.body)).toBe(201);

    await writeFiles(tree(), {
      'group.jpg': group,
      'day1/portrait.JPG': await fixture('sample2.jpg'),
      'day1/morning/a.png': await makeImage('png', 96),
      'day1/morning/b.jpeg': await makeImage('jpeg', 96),
      'day2/c.webp': await sharp(await makeImage('png', 80)).webp().toBuffer(),
      'day2/notes.txt': 'not an image, and not picked by extension',
      '.hidden/d.jpg': await makeImage('jpeg', 64),
    });
  }, 180_000);

  it('uploads a directory tree with --wait: exit 0, and the summary matches the API', async () => {
    const r = await cli(tree(), tenant.deviceKey, t.url, '--wait', '--batch-size', '2', '--concurrency', '2');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const s = r.json;
    expect(s).toMatchObject({ files: 5, uploaded: 5, alreadyOnServer: 0, rejected: 0, done: 5, failed: 0, inProgress: 0, exitCode: 0 });
    expect(s.results.map((f: { path: string }) => path.relative(tree(), path.resolve(REPO_ROOT, f.path))).sort()).toEqual(
      ['day1/morning/a.png', 'day1/morning/b.jpeg', 'day1/portrait.JPG', 'day2/c.webp', 'group.jpg'],
    );
    expect(s.requests).toEqual({ lookup: 1, upload: 3 });
    expect(s.batches).toHaveLength(3);

    // The numbers agree with what the API says about each capture.
    let faces = 0;
    let memberFaces = 0;
    for (const f of s.results) {
      const c = await t.call('GET', `/v1/captures/${f.captureId}`, { key: tenant.deviceKey });
      expect(c.body.status).toBe('done');
      expect(c.body.sha256).toBe(f.sha256);
      expect(f.faces).toBe(c.body.faces.length);
      faces += c.body.faces.length;
      memberFaces += c.body.faces.filter((x: { match: { kind: string } | null }) => x.match?.kind === 'member').length;
    }
    expect(s.faces).toBe(faces);
    expect(faces).toBeGreaterThanOrEqual(4);
    expect(s.memberFaces).toBe(memberFaces);
    expect(s.members).toBe(1);
    for (const batchId of s.batches) {
      const b = await t.call('GET', `/v1/batches/${batchId}`, { key: tenant.deviceKey });
      expect(b.body).toMatchObject({ status: 'done', failed: 0 });
    }
  }, 240_000);

  it('a rerun sends no bytes: the lookup finds every file, no upload request is made, no capture is added', async () => {
    const before = await t.env.db('captures').where({ store_id: tenant.storeId }).count({ n: '*' }).first();
    const proxy = await startProxy(t.url);
    try {
      const r = await cli(tree(), tenant.deviceKey, proxy.url, '--wait');
      expect(r.code, r.stderr).toBe(0);
      expect(r.json).toMatchObject({ files: 5, uploaded: 0, alreadyOnServer: 5, done: 5, failed: 0, requests: { lookup: 1, upload: 0 }, members: 1 });
      expect(proxy.seen.filter((s) => s.path === '/v1/captures')).toEqual([]);
      const lookups = proxy.seen.filter((s) => s.path === '/v1/captures/lookup');
      expect(lookups).toHaveLength(1);
      expect(lookups[0].bytes).toBeLessThan(1000); // five hashes, not ~600 kB of images
      const sent = proxy.seen.reduce((n, s) => n + s.bytes, 0);
      expect(sent).toBeLessThan(2000);
    } finally {
      await proxy.close();
    }
    const after = await t.env.db('captures').where({ store_id: tenant.storeId }).count({ n: '*' }).first();
    expect(after).toEqual(before);
  }, 120_000);

  it('a bad file makes the exit code non-zero and the summary names it by reason', async () => {
    const dir = path.join(root, 'bad');
    const good = await makeImage('jpeg', 96);
    await writeFiles(dir, {
      'good.jpg': good,
      'copy-of-good.jpg': good,
      'notes.jpg': 'this is not an image at all',
      'cut.jpg': (await fixture('sample3.jpg')).subarray(0, 40_000),
    });
    const r = await cli(dir, tenant.deviceKey, t.url, '--wait');
    expect(r.code, r.stderr).toBe(1);
    expect(r.json).toMatchObject({ files: 4, distinct: 3, uploaded: 2, sameContent: 1, rejected: 1, done: 1, failed: 1, exitCode: 1 });
    expect(Object.keys(r.json.problems).sort()).toEqual(['truncated', 'unsupported_format']);
    expect(r.json.problems.unsupported_format.files).toEqual([expect.stringMatching(/notes\.jpg$/)]);
    expect(r.json.problems.truncated.files).toEqual([expect.stringMatching(/cut\.jpg$/)]);
    const byPath = Object.fromEntries(r.json.results.map((f: { path: string }) => [path.basename(f.path), f]));
    expect(byPath['copy-of-good.jpg'].captureId).toBe(byPath['good.jpg'].captureId);

    // The text output says the same to a human.
    const again = await runCli(['upload', dir, '--url', t.url, '--device-key', tenant.deviceKey, '--wait']);
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(/truncated: 1/);
    expect(again.stdout).toMatch(/unsupported_format: 1/);
    expect(again.stdout).toMatch(/notes\.jpg/);
  }, 120_000);

  it('retries 503 and 429 (honouring Retry-After) and a connection cut mid-body, and still sends each file once', async () => {
    const deviceKey = await newDevice(t, tenant, 'robot-flaky');
    const deviceId = await deviceIdOf(tenant, deviceKey);
    const dir = path.join(root, 'flaky');
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 6; i++) files[`f${i}.jpg`] = await makeImage('jpeg', 128, { noise: true });
    await writeFiles(dir, files);

    let uploads = 0;
    let lookups = 0;
    const times: Record<string, number> = {};
    const proxy = await startProxy(t.url, (req) => {
      if (req.url === '/v1/captures/lookup' && ++lookups === 1) return { status: 503, body: { error: { code: 'unavailable', message: 'redis down' } } };
      if (req.url === '/v1/captures') {
        uploads++;
        times[`upload${uploads}`] = Date.now();
        if (uploads === 1) return { status: 429, headers: { 'retry-after': '1' }, body: { error: { code: 'too_many_requests', message: 'queues are full' } } };
        if (uploads === 3) return 'reset';
      }
      return 'forward';
    });
    try {
      const r = await cli(dir, deviceKey, proxy.url, '--batch-size', '3', '--concurrency', '1', '--verbose');
      expect(r.code, r.stderr).toBe(0);
      expect(r.json).toMatchObject({ files: 6, uploaded: 6, rejected: 0, unsent: 0 });
      expect(r.stderr).toMatch(/503 unavailable; retry 1/);
      expect(r.stderr).toMatch(/429 too_many_requests; retry 1 in 1\.\d s/);
      // Retry-After: 1 was honoured: the second attempt came at least a second after the 429.
      expect(times.upload2 - times.upload1).toBeGreaterThanOrEqual(1000);
      const statuses = proxy.seen.filter((s) => s.path === '/v1/captures').map((s) => s.status);
      expect(statuses).toEqual([429, 202, 'reset', 202]);
    } finally {
      await proxy.close();
    }
    const rows = await capturesOf(deviceId);
    const shas = rows.map((row) => row.sha256);
    expect(new Set(shas).size).toBe(shas.length);
    expect(rows).toHaveLength(6 + 1); // six files and the probe
  }, 120_000);

  it('never retries a 4xx: a revoked key stops the run with exit 2 after one request', async () => {
    const deviceKey = await newDevice(t, tenant, 'robot-revoked');
    const dir = path.join(root, 'revoked');
    await writeFiles(dir, { 'x.jpg': await makeImage('jpeg', 64) });
    const proxy = await startProxy(t.url);
    try {
      const r = await runCli(['upload', dir, '--url', proxy.url, '--device-key', `${deviceKey}x`]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/refused the device key/);
      expect(proxy.seen.map((s) => [s.path, s.status])).toEqual([['/v1/captures/lookup', 401]]);
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it('resumes after being killed mid-upload: the rerun sends only the rest, every file ends up exactly once', async () => {
    const deviceKey = await newDevice(t, tenant, 'robot-killed');
    const deviceId = await deviceIdOf(tenant, deviceKey);
    const dir = path.join(root, 'killed');
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 12; i++) files[`burst/${String(i).padStart(2, '0')}.jpg`] = await makeImage('jpeg', 96, { noise: true });
    await writeFiles(dir, files);
    const total = Object.values(files).reduce((n, b) => n + b.length, 0);

    // Uploads are slowed down, so the kill lands after the first batch and before the last.
    const slow = await startProxy(t.url, async (req): Promise<Decision> => {
      if (req.url === '/v1/captures') await new Promise((r) => setTimeout(r, 400));
      return 'forward';
    });
    const first = startCli(['upload', dir, '--url', slow.url, '--device-key', deviceKey, '--batch-size', '3', '--concurrency', '1']);
    const accepted = new Promise<void>((resolve) => slow.onRecord((s) => s.path === '/v1/captures' && s.status === 202 && resolve()));
    await accepted;
    first.child.kill('SIGKILL');
    const killed = await first.done;
    await slow.close();
    expect(killed.signal).toBe('SIGKILL');
    const afterKill = (await capturesOf(deviceId)).length - 1;
    expect(afterKill).toBeGreaterThanOrEqual(3);
    expect(afterKill).toBeLessThan(12);

    const proxy = await startProxy(t.url);
    try {
      const r = await cli(dir, deviceKey, proxy.url, '--batch-size', '3', '--wait');
      expect(r.code, r.stderr).toBe(0);
      expect(r.json).toMatchObject({ files: 12, uploaded: 12 - afterKill, alreadyOnServer: afterKill, done: 12, failed: 0 });
      const uploaded = proxy.seen.filter((s) => s.path === '/v1/captures').reduce((n, s) => n + s.bytes, 0);
      expect(uploaded).toBeLessThan(total); // what the killed run got through is not sent again
    } finally {
      await proxy.close();
    }
    const rows = await capturesOf(deviceId);
    expect(rows).toHaveLength(12 + 1);
    expect(new Set(rows.map((row) => row.sha256)).size).toBe(13);
    await waitFor(async () => (await capturesOf(deviceId)).every((row) => row.status === 'done'), 60_000, 'every capture done');
  }, 240_000);

  it('survives an API restart in the middle of an upload: retries until it is back, nothing lost or doubled', async () => {
    const deviceKey = await newDevice(t, tenant, 'robot-restart');
    const deviceId = await deviceIdOf(tenant, deviceKey);
    const dir = path.join(root, 'restart');
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 8; i++) files[`r${i}.jpg`] = await makeImage('jpeg', 96, { noise: true });
    await writeFiles(dir, files);

    // A second API instance on the same services, which the test stops and starts again on its port.
    const deps = { config: t.env.config, db: t.env.db, blobs: t.blobs, queues: t.queues };
    let api = await listen(deps, 0, '127.0.0.1');
    const port = (api.server.address() as AddressInfo).port;
    const proxy = await startProxy(`http://127.0.0.1:${port}`, async (req): Promise<Decision> => {
      if (req.url === '/v1/captures') await new Promise((r) => setTimeout(r, 300));
      return 'forward';
    });
    try {
      const run = startCli(['upload', dir, '--url', proxy.url, '--device-key', deviceKey, '--batch-size', '2', '--concurrency', '1', '--retries', '14', '--json', '--wait']);
      await new Promise<void>((resolve) => proxy.onRecord((s) => s.path === '/v1/captures' && s.status === 202 && resolve()));
      await api.close();
      await new Promise((r) => setTimeout(r, 1500));
      api = await listen(deps, port, '127.0.0.1');
      const r = await run.done;
      expect(r.code, r.stderr).toBe(0);
      expect(r.json).toMatchObject({ files: 8, rejected: 0, unsent: 0, done: 8, failed: 0 });
      expect(r.json.uploaded + r.json.alreadyOnServer).toBe(8);
      expect(r.stderr).toMatch(/retry \d+ in/);
    } finally {
      await proxy.close();
      await api.close();
    }
    const rows = await capturesOf(deviceId);
    expect(rows).toHaveLength(8 + 1);
    expect(new Set(rows.map((row) => row.sha256)).size).toBe(9);
  }, 180_000);

  it('--captured-at-from-mtime sends each file time; admin commands create a merchant, store, device and keys and revoke one', async () => {
    const dir = path.join(root, 'mtime');
    // old.png shows faces, so that reprocessing it below can be seen not to double them.
    await writeFiles(dir, { 'old.png': await sharp(await fixture('sample1.jpg')).resize(480).png().toBuffer(), 'older.png': await makeImage('png', 64) });
    await fs.utimes(path.join(dir, 'old.png'), new Date('2026-03-01T09:30:00Z'), new Date('2026-03-01T09:30:00Z'));
    await fs.utimes(path.join(dir, 'older.png'), new Date('2026-02-01T08:00:00Z'), new Date('2026-02-01T08:00:00Z'));

    const admin = (...args: string[]) => runCli(['admin', ...args], { FACEPERKS_URL: t.url, FACEPERKS_ADMIN_KEY: t.adminKey });
    const merchant = await admin('create-merchant', 'Robots', 'Inc');
    expect(merchant.code, merchant.stderr).toBe(0);
    expect(merchant.json).toMatchObject({ name: 'Robots Inc' });
    const mkey = await admin('merchant-key', '--merchant', merchant.json.id);
    expect(mkey.json.key).toEqual(expect.any(String));
    const store = await admin('create-store', '--merchant', merchant.json.id, '--name', 'Depot', '--timezone', 'Europe/Berlin');
    expect(store.json).toMatchObject({ merchantId: merchant.json.id, timezone: 'Europe/Berlin' });
    const device = await admin('create-device', '--store', store.json.id, '--name', 'robot-7');
    expect(device.json.key).toEqual(expect.any(String));
    const bad = await admin('create-store', '--merchant', merchant.json.id, '--name', 'X', '--timezone', 'Mars/Olympus');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/400 validation_error/);

    const r = await runCli(['upload', dir, '--captured-at-from-mtime', '--json', '--wait'], { FACEPERKS_URL: t.url, FACEPERKS_DEVICE_KEY: device.json.key });
    expect(r.code, r.stderr).toBe(0);
    for (const f of r.json.results) {
      const c = await t.call('GET', `/v1/captures/${f.captureId}`, { key: device.json.key });
      expect(c.body.capturedAtSource).toBe('device');
      expect(c.body.capturedAt).toBe(f.path.endsWith('older.png') ? '2026-02-01T08:00:00.000Z' : '2026-03-01T09:30:00.000Z');
    }

    const second = await admin('device-key', '--device', device.json.id);
    expect(second.json.key).toEqual(expect.any(String));
    const revoked = await admin('revoke-key', device.json.keyId);
    expect(revoked.code, revoked.stderr).toBe(0);
    const after = await runCli(['upload', dir, '--url', t.url, '--device-key', device.json.key]);
    expect(after.code).toBe(2);
    const still = await runCli(['upload', dir, '--url', t.url, '--device-key', second.json.key]);
    expect(still.code, still.stderr).toBe(0);
    expect(still.stdout).toMatch(/already on server 2/);

    const ids: string[] = r.json.results.map((f: { captureId: string }) => f.captureId);
    expect(ids).toHaveLength(2);
    const before = await t.env.db('captures').whereIn('id', ids).select('id', 'run', 'status', 'captured_at');
    expect(before.map((c) => c.status)).toEqual(['done', 'done']);
    const facesBefore = await t.env.db('faces').whereIn('capture_id', ids).count({ n: '*' });
    expect(Number(facesBefore[0].n)).toBeGreaterThan(0);
    const reprocess = await runCli(['reprocess', '--store', store.json.id, '--from', '2026-02-01T00:00:00Z', '--to', '2026-03-02T00:00:00Z', '--wait'], {
      FACEPERKS_URL: t.url,
      FACEPERKS_ADMIN_KEY: mkey.json.key,
    });
    expect(reprocess.code, reprocess.stderr).toBe(0);
    expect([reprocess.json.state, reprocess.json.progress]).toEqual(['completed', { total: 2, done: 2, queued: 2, imageGone: 0 }]);
    // Both captures ran again, under the next run number, to the end: same capture times, nothing doubled.
    const rerun = await waitFor(
      async () => {
        const rows = await t.env.db('captures').whereIn('id', ids).select('id', 'run', 'status', 'captured_at');
        return rows.every((row) => row.status === 'done' && row.run === before.find((b) => b.id === row.id)!.run + 1) ? rows : undefined;
      },
      120_000,
      'both captures reprocessed under a new run',
    );
    for (const row of rerun) expect(row.captured_at).toEqual(before.find((b) => b.id === row.id)!.captured_at);
    expect(await t.env.db('faces').whereIn('capture_id', ids).count({ n: '*' })).toEqual(facesBefore);
  }, 180_000);
});

describe('POST /v1/captures/lookup', () => {
  it("answers only the calling device's captures, validates the hashes, and is device-only", async () => {
    const a = await seedTenant(t, 'Lookup A');
    const b = await seedTenant(t, 'Lookup B');
    const image = await makeImage('jpeg', 64);
    const sent = await upload(t, a.deviceKey, [{ name: 'images', file: image, filename: 'x.jpg' }]);
    const sha = sent.body.captures[0].sha256 as string;
    const unknown = 'ab'.repeat(32);

    const mine = await t.call('POST', '/v1/captures/lookup', { key: a.deviceKey, json: { sha256: [sha.toUpperCase(), unknown, sha] } });
    expect(mine.status).toBe(200);
    expect(mine.body).toEqual({ known: [{ sha256: sha, id: sent.body.captures[0].id, status: expect.any(String) }] });
    // Another tenant's device (and so any other device) does not learn what A sent.
    const theirs = await t.call('POST', '/v1/captures/lookup', { key: b.deviceKey, json: { sha256: [sha] } });
    expect(theirs.body).toEqual({ known: [] });

    for (const json of [{ sha256: ['xyz'] }, { sha256: 'abc' }, {}, { sha256: Array(1001).fill(unknown) }, { sha256: [], extra: 1 }]) {
      const r = await t.call('POST', '/v1/captures/lookup', { key: a.deviceKey, json });
      expect([r.status, r.body.error.code], JSON.stringify(json).slice(0, 60)).toEqual([400, 'validation_error']);
    }
    expect((await t.call('POST', '/v1/captures/lookup', { key: a.merchantKey, json: { sha256: [sha] } })).status).toBe(403);
    expect((await t.call('POST', '/v1/captures/lookup', { json: { sha256: [sha] } })).status).toBe(401);
    const full = await t.call('POST', '/v1/captures/lookup', { key: a.deviceKey, json: { sha256: Array(1000).fill(unknown) } });
    expect(full.status).toBe(200);

    const doc = await t.call('GET', '/v1/openapi.json');
    expect(doc.body.paths['/v1/captures/lookup'].post).toBeDefined();
  });
});

const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
