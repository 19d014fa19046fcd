/**
 * No known admin key (compose needs the variable; the service refuses short or published keys at
 * start) and a Bull Board that other sites cannot drive with a browser's cached credentials, where
 * jobs cannot be added or edited at all.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REEMBED_QUEUE } from '../../src/queue/contract.js';
import { adminKeyProblem, bootstrapAdminKey, hashApiKey } from '../../src/storage/repositories/apiKeys.js';
import { startTestApi, type TestApi } from './support.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

let t: TestApi;
beforeAll(async () => {
  t = await startTestApi();
});
afterAll(async () => {
  await t?.close();
});

/** Every value the repo's docs and compose file give FACEPERKS_ADMIN_KEY (assignments, defaults, examples). */
async function documentedAdminKeys(): Promise<string[]> {
  const docs = (await fs.readdir(path.join(ROOT, 'docs'))).filter((file) => file.endsWith('.md')).map((file) => path.join('docs', file));
  const values: string[] = [];
  for (const file of ['README.md', 'docker-compose.yml', 'Dockerfile', ...docs]) {
    const text = await fs.readFile(path.join(ROOT, file), 'utf8').catch(() => '');
    for (const match of text.matchAll(/FACEPERKS_ADMIN_KEY(?::-|\s*[=:]\s*['"]?)([^\s'"}`$]+)/g)) values.push(match[1]);
  }
  return values;
}

describe('admin key', () => {
  it('compose refuses to start without FACEPERKS_ADMIN_KEY, and no doc shows a key the service would take', async () => {
    const compose = await fs.readFile(path.join(ROOT, 'docker-compose.yml'), 'utf8');
    const settings = compose.split('\n').filter((line) => /^\s*FACEPERKS_ADMIN_KEY:/.test(line));
    expect(settings.length).toBeGreaterThan(0);
    for (const line of settings) expect(line).toMatch(/^\s*FACEPERKS_ADMIN_KEY: "?\$\{FACEPERKS_ADMIN_KEY:\?[^}]+\}"?\s*$/);
    for (const value of [...(await documentedAdminKeys()), 'change-me-to-a-long-random-admin-key']) {
      expect(adminKeyProblem(value), value).not.toBeNull();
    }
  });

  it('refuses a configured key shorter than 32 characters or published, and stores nothing', async () => {
    for (const key of ['x'.repeat(31), 'change-me-to-a-long-random-admin-key', 'CHANGE-ME-to-a-long-random-admin-key-please']) {
      await expect(bootstrapAdminKey(t.env.db, key), key).rejects.toThrow(/FACEPERKS_ADMIN_KEY/);
      expect(await t.env.db('api_keys').where('key_hash', hashApiKey(key)).first()).toBeUndefined();
    }
    // The generated key is still the admin key.
    expect((await t.call('POST', '/v1/merchants', { key: t.adminKey, json: { name: 'Still admin' } })).status).toBe(201);
  });

  it('the API process exits at start, before touching anything, with a published or short key', async () => {
    const run = promisify(execFile);
    for (const key of ['change-me-to-a-long-random-admin-key', randomBytes(12).toString('hex')]) {
      const env = { ...process.env, FACEPERKS_ADMIN_KEY: key, DATABASE_URL: 'mysql://nobody@127.0.0.1:1/none', PORT: '1' };
      const failure = await run(process.execPath, ['--import', 'tsx', 'src/api/main.ts'], { cwd: ROOT, env, timeout: 60_000 }).then(
        () => undefined,
        (error: { code?: number; stderr?: string }) => error,
      );
      expect(failure?.code, key).toBe(2);
      expect(failure?.stderr).toMatch(/FACEPERKS_ADMIN_KEY (must be at least 32 characters|is an example value)/);
    }
  }, 120_000);
});

describe('Bull Board writes', () => {
  const basic = () => `Basic ${Buffer.from(`admin:${t.adminKey}`).toString('base64')}`;
  const board = (route: string, init: { method: string; headers?: Record<string, string>; body?: string }) =>
    fetch(`${t.url}/admin/queues${route}`, { ...init, headers: { authorization: basic(), ...init.headers } });
  const reembedJobs = async () => (await t.queues.queue(REEMBED_QUEUE).getJobs()).length;

  it('refuses any change another site asks a browser to send, whatever the credentials', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const crossSite: Record<string, string>[] = [
      { ...form, origin: 'http://evil.example' },
      { ...form, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
      { ...form, 'sec-fetch-site': 'same-site' },
      { ...form, origin: 'null' },
      { ...form, origin: `${t.url}.evil.example` },
    ];
    for (const headers of crossSite) {
      const r = await board(`/api/queues/${REEMBED_QUEUE}/add`, { method: 'POST', headers, body: 'name=reembed&data=%7B%22pack%22%3A%22retinaface%22%7D' });
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect((await r.json()).error.code).toBe('forbidden');
    }
    const pause = await board(`/api/queues/${REEMBED_QUEUE}/pause`, { method: 'PUT', headers: { origin: 'http://evil.example' } });
    expect(pause.status).toBe(403);
    expect(await t.queues.queue(REEMBED_QUEUE).isPaused()).toBe(false);
    expect(await reembedJobs()).toBe(0);
    // Reading is unaffected (a cross-site GET cannot read the answer).
    expect((await board('/api/queues', { method: 'GET', headers: { 'sec-fetch-site': 'cross-site' } })).status).toBe(200);
  });

  it('takes retry, clean, pause and resume from its own pages, but never adds or edits a job', async () => {
    const sameOrigin: Record<string, string>[] = [{ origin: t.url }, { 'sec-fetch-site': 'same-origin', origin: t.url }, {}];
    for (const headers of sameOrigin) {
      const pause = await board(`/api/queues/${REEMBED_QUEUE}/pause`, { method: 'PUT', headers });
      expect(pause.status, JSON.stringify(headers)).toBe(200);
      expect(await t.queues.queue(REEMBED_QUEUE).isPaused()).toBe(true);
      expect((await board(`/api/queues/${REEMBED_QUEUE}/resume`, { method: 'PUT', headers })).status).toBe(200);
      expect(await t.queues.queue(REEMBED_QUEUE).isPaused()).toBe(false);
      expect((await board(`/api/queues/${REEMBED_QUEUE}/clean/failed`, { method: 'PUT', headers })).status).toBe(200);
    }

    const json = { 'content-type': 'application/json', origin: t.url };
    const add = await board(`/api/queues/${REEMBED_QUEUE}/add`, { method: 'POST', headers: json, body: JSON.stringify({ name: 'reembed', data: { pack: 'retinaface' } }) });
    expect(add.status).toBe(405);
    expect((await add.json()).error.code).toBe('read_only');
    expect(await reembedJobs()).toBe(0);

    const job = await t.queues.enqueue('reembed', { pack: 'retinaface' });
    const edit = await board(`/api/queues/${REEMBED_QUEUE}/${job.id}/update-data`, { method: 'PATCH', headers: json, body: JSON.stringify({ data: { pack: 'insightface' } }) });
    expect(edit.status).toBe(405);
    expect((await t.queues.queue(REEMBED_QUEUE).getJob(job.id!))?.data).toEqual({ pack: 'retinaface' });
    await job.remove();
  });
});
