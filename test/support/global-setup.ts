/** One Chroma server for the whole test run (unless CHROMA_URL names one already running). */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalChroma, type LocalChroma } from '../../src/gallery/local-server.js';
import { freePort } from '../../scripts/free-port.js';

export { freePort };

let chroma: LocalChroma | undefined;
let dataDir: string | undefined;

export async function setup(): Promise<void> {
  if (process.env.CHROMA_URL) return;
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceperks-test-chroma-'));
  chroma = await startLocalChroma(dataDir, await freePort());
  process.env.CHROMA_URL = chroma.url;
}

export async function teardown(): Promise<void> {
  await chroma?.stop();
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
}

