/** The CLI's pure parts: batch planning, Retry-After, backoff, mtime plausibility, file walk, summary exit codes. */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findFiles, sha256File } from '../../src/cli/files.js';
import { backoffDelay, parseRetryAfter } from '../../src/cli/http.js';
import { multipartBody } from '../../src/cli/multipart.js';
import { exitCodeOf, summarize } from '../../src/cli/summary.js';
import { planBatches, plausibleMtime, type UploadRun } from '../../src/cli/uploader.js';

describe('planBatches', () => {
  it('caps files and bytes per batch, sends an oversized file alone, never mixes keys', () => {
    const sizes = [5, 5, 5, 20, 1, 1, 1, 1];
    const batches = planBatches(sizes, 3, 12, (n) => n);
    expect(batches).toEqual([[5, 5], [5], [20], [1, 1, 1], [1]]);
    const keyed = planBatches([1, 2, 3, 4, 5], 10, 100, (n) => n, (n) => (n % 2 ? 'odd' : 'even'));
    expect(keyed).toEqual([[1, 3, 5], [2, 4]]);
  });
});

describe('retry timing', () => {
  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('1')).toBe(1000);
    expect(parseRetryAfter('2.5')).toBe(2500);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:03 GMT', now)).toBe(3000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });

  it('backs off exponentially with full jitter, capped', () => {
    const policy = { attempts: 10, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(1, policy, () => 1)).toBe(100);
    expect(backoffDelay(3, policy, () => 1)).toBe(400);
    expect(backoffDelay(9, policy, () => 1)).toBe(1000);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(200);
    expect(backoffDelay(3, policy, () => 0)).toBe(50);
  });
});

describe('files', () => {
  it('walks directories for image extensions, skips hidden entries, keeps named files, hashes by streaming', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'fp-walk-'));
    try {
      for (const rel of ['a/x.JPG', 'a/b/y.heic', 'a/.hid/z.jpg', 'a/readme.md', 'c.tiff', 'named.bin']) {
        await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
        await fs.writeFile(path.join(root, rel), rel);
      }
      const { files, missing } = await findFiles([path.join(root, 'a'), path.join(root, 'named.bin'), path.join(root, 'a'), 'nope'], root);
      expect(files.map((f) => f.display)).toEqual(['a/b/y.heic', 'a/x.JPG', 'named.bin']);
      expect(missing).toEqual(['nope']);
      expect(await sha256File(path.join(root, 'c.tiff'))).toBe(createHash('sha256').update('c.tiff').digest('hex'));
      const body = multipartBody([{ name: 'capturedAt', value: '2026-01-01T00:00:00Z' }], files.map((f) => ({ name: 'images', path: f.path, filename: path.basename(f.path), size: f.size })));
      if (!('stream' in body)) throw new Error('expected a stream');
      const chunks: Buffer[] = [];
      for await (const c of body.stream()) chunks.push(c);
      expect(Buffer.concat(chunks).length).toBe(body.length);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('treats mtimes before 2001 or in the future as implausible', () => {
    const now = Date.parse('2026-06-01T00:00:00Z');
    expect(plausibleMtime(new Date('2026-05-31T00:00:00Z'), now)).toBe(true);
    expect(plausibleMtime(new Date('1980-01-01T00:00:00Z'), now)).toBe(false);
    expect(plausibleMtime(new Date('2026-06-03T00:00:00Z'), now)).toBe(false);
  });
});

describe('summary', () => {
  const file = (name: string) => ({ path: `/x/${name}`, display: name, size: 1, mtime: new Date() });
  it('exits 0 only when every file is on the server and nothing failed', () => {
    const ok: UploadRun = {
      results: [
        { file: file('a'), sha256: 'a', outcome: 'sent', captureId: '1', status: 'queued' },
        { file: file('b'), sha256: 'b', outcome: 'known', captureId: '2', status: 'done' },
      ],
      batchIds: ['b1'],
      requests: { lookup: 1, upload: 1 },
    };
    expect(exitCodeOf(summarize(ok))).toBe(0);
    const bad: UploadRun = { ...ok, results: [...ok.results, { file: file('c'), sha256: 'c', outcome: 'known', captureId: '3', status: 'failed', error: { code: 'truncated', message: 'cut' } }] };
    const s = summarize(bad);
    expect(exitCodeOf(s)).toBe(1);
    expect(s.problems).toEqual({ truncated: { count: 1, message: 'cut', files: ['c'] } });
    const unsent: UploadRun = { ...ok, results: [...ok.results, { file: file('d'), sha256: 'd', outcome: 'unsent', error: { code: 'upload_failed', message: 'x' } }] };
    expect(exitCodeOf(summarize(unsent))).toBe(1);
  });
});

describe('bin/faceperks.mjs', () => {
  it('runs the TypeScript CLI through tsx: --help exits 0, a usage error exits 2', async () => {
    const { spawnSync } = await import('node:child_process');
    const repo = path.resolve(import.meta.dirname, '../..');
    const help = spawnSync(process.execPath, ['bin/faceperks.mjs', '--help'], { cwd: repo, encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/faceperks upload DIR\|FILE/);
    const bad = spawnSync(process.execPath, ['bin/faceperks.mjs', 'upload', '--batch-size', '0', 'x'], { cwd: repo, encoding: 'utf8', env: { ...process.env, FACEPERKS_URL: 'http://127.0.0.1:1', FACEPERKS_DEVICE_KEY: 'k' } });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--batch-size must be an integer >= 1/);
  }, 30_000);
});
