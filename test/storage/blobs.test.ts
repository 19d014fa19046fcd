/**
 * One contract, two stores: local disk and S3 (against a real S3-protocol server on loopback,
 * scripts/s3-server.ts). Each store is opened the way the service opens it, from BLOB_URL.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startS3Server, type S3TestServer } from '../../scripts/s3-server.js';
import { BlobNotFoundError, BlobStoreFault, BlobTooLargeError, openBlobStore, type BlobStore } from '../../src/storage/blobs.js';
import { LocalBlobStore } from '../../src/storage/blobs/local.js';
import { S3BlobStore, SILENCE_TIMEOUT_MS } from '../../src/storage/blobs/s3.js';

type Opened = { store: BlobStore; stagingDir: string; dataDir: string; server?: S3TestServer };

async function open(kind: 'local' | 's3'): Promise<Opened> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `faceperks-blobs-${kind}-`));
  const blobsDir = path.join(dataDir, 'blobs');
  if (kind === 'local') {
    return { store: openBlobStore({ BLOB_URL: undefined, blobsDir, DATA_DIR: dataDir }), stagingDir: path.join(blobsDir, 'tmp'), dataDir };
  }
  const server = await startS3Server();
  for (const [name, value] of Object.entries(server.env)) vi.stubEnv(name, value);
  return { store: openBlobStore({ BLOB_URL: server.env.BLOB_URL, blobsDir, DATA_DIR: dataDir }), stagingDir: path.join(dataDir, 'tmp'), dataDir, server };
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
/** Whole-buffer comparison (vitest's deep equality walks a buffer byte by byte, for seconds). */
const same = (actual: Buffer, expected: Buffer) => expect(actual.equals(expected), `${actual.length} bytes vs ${expected.length} expected`).toBe(true);
const chunked = (data: Buffer, size = 64 * 1024) => Readable.from(Array.from({ length: Math.ceil(data.length / size) }, (_, i) => data.subarray(i * size, (i + 1) * size)));
const exists = (file: string) => fs.access(file).then(() => true, () => false);

describe.each(['local', 's3'] as const)('%s blob store', (kind) => {
  let opened: Opened;
  let blobs: BlobStore;
  const staged = () => fs.readdir(opened.stagingDir).catch(() => [] as string[]);

  beforeAll(async () => {
    opened = await open(kind);
    blobs = opened.store;
  });
  afterAll(async () => {
    await opened?.server?.stop();
    vi.unstubAllEnvs();
    if (opened) await fs.rm(opened.dataDir, { recursive: true, force: true });
  });

  it('is the store BLOB_URL names', () => {
    expect(blobs).toBeInstanceOf(kind === 'local' ? LocalBlobStore : S3BlobStore);
  });

  it('stages an upload while hashing it and commits it at its content address', async () => {
    const data = randomBytes(300 * 1024);
    const upload = await blobs.stageStream('captures', chunked(data), 1024 * 1024);
    const sha = sha256(data);
    expect(upload).toMatchObject({ key: `captures/${sha.slice(0, 2)}/${sha}`, sha256: sha, bytes: data.length });
    same(await blobs.readStaged(upload), data);
    expect(await blobs.exists(upload.key)).toBe(false);

    await blobs.commit(upload);
    same(await blobs.get(upload.key), data);
    expect(await exists(upload.tmpPath)).toBe(false);

    // The same bytes again: the same key, stored once.
    const again = await blobs.stageStream('captures', chunked(data), 1024 * 1024);
    expect(again.key).toBe(upload.key);
    await blobs.commit(again);
    same(await blobs.get(upload.key), data);
    expect(await staged()).toEqual([]);
  });

  it('commits a file larger than 5 MiB whole', async () => {
    const data = randomBytes(11 * 1024 * 1024 + 123);
    const upload = await blobs.stageStream('captures', chunked(data, 1024 * 1024), 20 * 1024 * 1024);
    await blobs.commit(upload);
    same(await blobs.get(upload.key), data);
  });

  it('aborts an upload past its limit leaving nothing behind', async () => {
    const data = randomBytes(200 * 1024);
    const sha = sha256(data);
    await expect(blobs.stageStream('captures', chunked(data, 16 * 1024), 100 * 1024)).rejects.toBeInstanceOf(BlobTooLargeError);
    expect(await staged()).toEqual([]);
    expect(await blobs.exists(`captures/${sha.slice(0, 2)}/${sha}`)).toBe(false);
  });

  it("passes on the source's failure as it is: a client's fault, not the store's", async () => {
    const source = new Readable({ read() {} });
    source.push(randomBytes(1000));
    setTimeout(() => source.destroy(new Error('client went away')), 10);
    const failure = await blobs.stageStream('captures', source, 1024 * 1024).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect(failure).not.toBeInstanceOf(BlobStoreFault);
    expect((failure as Error).message).toBe('client went away');
    expect(await staged()).toEqual([]);
  });

  it('discards a staged upload', async () => {
    const upload = await blobs.stageStream('captures', chunked(randomBytes(1000)), 1024 * 1024);
    await blobs.discard(upload);
    expect(await staged()).toEqual([]);
    expect(await blobs.exists(upload.key)).toBe(false);
  });

  it('puts, gets, tells whether a key exists and deletes it', async () => {
    const key = 'people/p1/ab/abcdef';
    await blobs.put(key, 'hello');
    expect(await blobs.exists(key)).toBe(true);
    expect((await blobs.get(key)).toString()).toBe('hello');
    await blobs.put(key, 'replaced');
    expect((await blobs.get(key)).toString()).toBe('replaced');
    await blobs.delete(key);
    expect(await blobs.exists(key)).toBe(false);
    await blobs.delete(key);

    const missing = await blobs.get(key).catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(BlobNotFoundError);
    // Readers test the code, as for a file.
    expect((missing as NodeJS.ErrnoException).code).toBe('ENOENT');
    await expect(blobs.get('../outside')).rejects.toThrow(/invalid blob key/);
  });

  it('deletes every key under a prefix, and only those', async () => {
    for (const key of ['identify/r1/aa/one', 'identify/r1/bb/two', 'identify/r12/aa/three']) await blobs.put(key, key);
    await blobs.deletePrefix('identify/r1');
    expect(await blobs.exists('identify/r1/aa/one')).toBe(false);
    expect(await blobs.exists('identify/r1/bb/two')).toBe(false);
    expect(await blobs.exists('identify/r12/aa/three')).toBe(true);
    await blobs.deletePrefix('identify/none');
  });

  it('deletes many blobs at once, skipping keys that hold nothing', async () => {
    const keys: string[] = [];
    for (const data of [randomBytes(5000), randomBytes(5000)]) {
      const upload = await blobs.stageStream('captures', chunked(data), 1024 * 1024);
      await blobs.commit(upload);
      keys.push(upload.key);
    }
    await blobs.deleteMany([...keys, 'captures/00/0000']);
    for (const key of keys) expect(await blobs.exists(key)).toBe(false);
    await blobs.deleteMany([]);
  });

  it('sweeps staged uploads left by a crash, and only old ones', async () => {
    await blobs.stageStream('captures', chunked(randomBytes(1000)), 1024 * 1024);
    expect(await blobs.sweepStaged(3600_000)).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await blobs.sweepStaged(0)).toBe(1);
    expect(await staged()).toEqual([]);
    expect(await blobs.sweepStaged(0)).toBe(0);
  });

  it('probes as ready', async () => {
    await blobs.probe();
  });
});

describe('S3 blob store specifics', () => {
  let server: S3TestServer;
  let dataDir: string;
  let blobs: BlobStore;

  beforeAll(async () => {
    server = await startS3Server({ prefix: 'tenant-a/blobs' });
    for (const [name, value] of Object.entries(server.env)) vi.stubEnv(name, value);
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceperks-blobs-s3-'));
    blobs = openStore();
  });
  afterAll(async () => {
    await server?.stop();
    vi.unstubAllEnvs();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  /** A store opened the way the service opens it, from BLOB_URL and the AWS variables as they are now. */
  const openStore = () => openBlobStore({ BLOB_URL: server.env.BLOB_URL, blobsDir: path.join(dataDir, 'blobs'), DATA_DIR: dataDir });

  /** Runs `work` on a store whose endpoint is `endpoint` (a server on loopback), then closes that server. */
  async function behind(endpoint: net.Server, work: (store: BlobStore) => Promise<void>): Promise<void> {
    const connections = new Set<net.Socket>();
    endpoint.on('connection', (socket) => connections.add(socket));
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    vi.stubEnv('AWS_ENDPOINT_URL_S3', `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}`);
    try {
      await work(openStore());
    } finally {
      vi.stubEnv('AWS_ENDPOINT_URL_S3', server.env.AWS_ENDPOINT_URL_S3);
      for (const socket of connections) socket.destroy();
      await new Promise((resolve) => endpoint.close(resolve));
    }
  }

  it("keeps every object under BLOB_URL's prefix and stages on this host's DATA_DIR/tmp", async () => {
    await blobs.put('people/p/aa/bb', 'x');
    expect(await fs.readdir(path.join(server.directory, server.bucket, 'tenant-a', 'blobs', 'people'))).toEqual(['p']);
    const upload = await blobs.stageStream('captures', Readable.from([Buffer.from('y')]), 10);
    expect(path.dirname(upload.tmpPath)).toBe(path.join(dataDir, 'tmp'));
    await blobs.discard(upload);
  });

  for (const variable of ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL']) {
    it(`takes the endpoint from ${variable} and addresses it path-style`, async () => {
      // `localhost` has no bucket subdomains: virtual-hosted addressing would not even resolve.
      for (const name of ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL']) vi.stubEnv(name, name === variable ? `http://localhost:${server.port}` : '');
      try {
        const store = openStore();
        expect((await store.get('people/p/aa/bb')).toString()).toBe('x');
      } finally {
        vi.stubEnv('AWS_ENDPOINT_URL_S3', server.env.AWS_ENDPOINT_URL_S3);
        vi.stubEnv('AWS_ENDPOINT_URL', '');
      }
    });
  }

  it('sends an upload again, from its staged file, when S3 answers 503 Slow Down', async () => {
    // A proxy in front of the server that throttles the first two PUTs it sees.
    let throttled = 0;
    const proxy = http.createServer((request, response) => {
      if (request.method === 'PUT' && throttled < 2) {
        throttled++;
        request.resume();
        response.writeHead(503, { 'content-type': 'application/xml' });
        response.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
        return;
      }
      const upstream = http.request({ host: '127.0.0.1', port: server.port, method: request.method, path: request.url, headers: request.headers }, (answer) => {
        response.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(response);
      });
      request.pipe(upstream);
    });
    await behind(proxy, async (store) => {
      const data = randomBytes(300 * 1024);
      const upload = await store.stageStream('captures', chunked(data, 64 * 1024), 1024 * 1024);
      await store.commit(upload);
      expect(throttled).toBe(2);
      same(await blobs.get(upload.key), data);
      expect(await exists(upload.tmpPath)).toBe(false);
    });
  });

  // The SDK makes three attempts of a request it can resend (a read), one of a streamed upload.
  it('fails a request to a server that takes the connection and then says nothing', { timeout: 3 * SILENCE_TIMEOUT_MS + 10_000 }, async () => {
    await behind(net.createServer(), async (store) => {
      const upload = await store.stageStream('captures', Readable.from([randomBytes(1000)]), 10_000);
      const started = performance.now();
      const [commit, get] = await Promise.all([store.commit(upload), store.get('people/p/aa/bb')].map((request) => request.catch((error: unknown) => error)));
      const waited = performance.now() - started;
      for (const failure of [commit, get]) {
        expect(failure).toBeInstanceOf(BlobStoreFault);
        expect((failure as BlobStoreFault).kind).toBe('unavailable');
      }
      expect(waited).toBeGreaterThanOrEqual(SILENCE_TIMEOUT_MS - 100);
      expect(await exists(upload.tmpPath)).toBe(false);
    });
  });

  it('turns an unreachable server into a BlobStoreFault, and a commit that failed leaves no staged file', async () => {
    const upload = await blobs.stageStream('captures', Readable.from([randomBytes(1000)]), 10_000);
    await server.stop();
    const failure = await blobs.commit(upload).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(BlobStoreFault);
    expect((failure as BlobStoreFault).kind).toBe('unavailable');
    expect(await exists(upload.tmpPath)).toBe(false);
    await expect(blobs.get('people/p/aa/bb')).rejects.toBeInstanceOf(BlobStoreFault);
    await expect(blobs.exists('people/p/aa/bb')).rejects.toBeInstanceOf(BlobStoreFault);
    await expect(blobs.probe()).rejects.toBeInstanceOf(BlobStoreFault);
  });
});

describe('local blob store faults', () => {
  it('turns an unusable folder into a BlobStoreFault, never a missing blob', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceperks-blobs-broken-'));
    try {
      const blobsDir = path.join(dataDir, 'blobs');
      await fs.writeFile(blobsDir, 'not a folder');
      const blobs = openBlobStore({ BLOB_URL: 'file:', blobsDir, DATA_DIR: dataDir });
      const failure = await blobs.stageStream('captures', Readable.from([Buffer.from('x')]), 10).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(BlobStoreFault);
      expect((failure as BlobStoreFault).kind).toBe('unavailable');
      await expect(blobs.exists('captures/aa/bb')).rejects.toBeInstanceOf(BlobStoreFault);
      await expect(blobs.get('captures/aa/bb')).rejects.toBeInstanceOf(BlobStoreFault);
      await expect(blobs.probe()).rejects.toBeInstanceOf(BlobStoreFault);
    } finally {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });
});
