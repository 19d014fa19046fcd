/** Issue 14 item 10: a generated admin key goes to a 0600 file under DATA_DIR, never to the logs. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ADMIN_KEY_FILE, announceAdminKey } from '../../src/api/main.js';
import { createLogger } from '../../src/logger.js';

let dataDir: string | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
});

describe('a generated admin key', () => {
  it('is written to DATA_DIR/admin-key with mode 0600, replacing a readable leftover, and only the path is printed', async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceperks-admin-key-'));
    const file = path.join(dataDir, ADMIN_KEY_FILE);
    await fs.writeFile(file, 'old\n', { mode: 0o644 });
    const printed: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (printed.push(String(chunk)), true));
    const key = 'fpk_admin_' + 'x'.repeat(40);
    await announceAdminKey({ source: 'generated', key }, { dataDir, logger: createLogger('silent', 'test') });
    vi.restoreAllMocks();

    expect(await fs.readFile(file, 'utf8')).toBe(`${key}\n`);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect(printed.join('')).toContain(file);
    expect(printed.join('')).not.toContain(key);
  });

  it('a configured or existing key writes no file', async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceperks-admin-key-'));
    await announceAdminKey({ source: 'existing' }, { dataDir, logger: createLogger('silent', 'test') });
    expect(await fs.readdir(dataDir)).toEqual([]);
  });
});
