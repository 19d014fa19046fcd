import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { receiveMultipart } from '../../src/api/multipart.js';
import { readImageHeader } from '../../src/imaging/prepare.js';
import { BlobStore } from '../../src/storage/blobs.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
});

describe('receiveMultipart', () => {
  it('settles at once for a client that vanished before the body was read', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceperks-multipart-'));
    dirs.push(dir);
    const outcome = new Promise<unknown>((resolve) => {
      const server = http.createServer(async (req, res) => {
        // The handler is slow to start reading (auth and rate limits hit MySQL and Redis first).
        await new Promise((r) => setTimeout(r, 300));
        const started = Date.now();
        const result = await receiveMultipart(req, {
          blobs: new BlobStore(dir),
          prefix: 'captures',
          imageFields: ['images'],
          textFields: [],
          fieldsBeforeImages: false,
          maxFiles: 4,
          maxFileBytes: 1_000_000,
          maxTotalBytes: 4_000_000,
          maxPixels: 1_000_000,
          readHeader: readImageHeader,
        }).then(
          () => 'resolved',
          (error: Error & { status?: number }) => `${error.status} ${error.message}`,
        );
        resolve({ result, ms: Date.now() - started });
        res.destroy();
        server.close();
      });
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.write(
            'POST /v1/captures HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n',
          );
          setTimeout(() => socket.destroy(), 50);
        });
        socket.on('error', () => undefined);
      });
    });

    const { result, ms } = (await outcome) as { result: string; ms: number };
    expect(result).toBe('400 the upload was interrupted');
    expect(ms).toBeLessThan(200);
  });
});
