import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { receiveMultipart } from '../../src/api/multipart.js';
import { readImageHeader } from '../../src/imaging/prepare.js';
import { LocalBlobStore } from '../../src/storage/blobs/local.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
});

/** Polls until `done()` or `timeoutMs` passes (a generous bound on a state, not a wall-clock limit). */
async function until(done: () => boolean, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  return done();
}

describe('receiveMultipart', () => {
  it('settles for a client that vanished before the body was read', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceperks-multipart-'));
    dirs.push(dir);
    const outcome = new Promise<{ gone: boolean; result: string }>((resolve) => {
      const server = http.createServer(async (req, res) => {
        // The handler is slow to start reading (auth and rate limits hit MySQL and Redis first): by
        // the time it does, the request is provably gone, so no 'close' event is left to wait for.
        const gone = await until(() => req.destroyed);
        const received = receiveMultipart(req, {
          blobs: new LocalBlobStore(dir),
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
        // Nothing will ever happen on this request again: still pending after a generous wait is a hang.
        let timer: NodeJS.Timeout | undefined;
        const hung = new Promise<string>((r) => (timer = setTimeout(() => r('still pending after 10 s'), 10_000)));
        const result = await Promise.race([received, hung]);
        clearTimeout(timer);
        resolve({ gone, result });
        res.destroy();
        server.close();
      });
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.write(
            'POST /v1/captures HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n',
            () => socket.destroy(),
          );
        });
        socket.on('error', () => undefined);
      });
    });

    const { gone, result } = await outcome;
    expect(gone).toBe(true);
    expect(result).toBe('400 the upload was interrupted');
  });
});
