/**
 * Hostile and random input on the upload path: the server must stay up, answer every request
 * with 202 or a 4xx in the error schema, leave no temp files, and keep serving normal uploads.
 */
import net from 'node:net';
import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { makeImage, multipart, seedTenant, startTestApi, upload, type Part, type TestApi } from './support.js';

let t: TestApi;
let tenant: Awaited<ReturnType<typeof seedTenant>>;
let port: number;

beforeAll(async () => {
  t = await startTestApi({ env: { MAX_UPLOAD_BYTES: '300000', MAX_UPLOAD_FILES: '20', MAX_UPLOAD_TOTAL_BYTES: '1000000', MAX_IMAGE_PIXELS: '4000000', DEVICE_UPLOAD_BURST: '100000' } });
  tenant = await seedTenant(t, 'Fuzz');
  port = (t.api.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await t?.close();
});

/**
 * Polls `probe` until `done` holds or `timeoutMs` passes, and returns the last value either way, so
 * the caller's expectation shows what the state was: a state waited on, not a wall clock.
 */
async function pollUntil<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Small deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256))),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)],
  };
}

type RawAnswer = { status: number; headers: Record<string, string>; body: string } | { status: 0; error: string };

/** Sends exact bytes over a socket (lying headers included) and reads the answer until close. */
function rawRequest(head: string, body: Buffer, options: { abortAfter?: number } = {}): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error?: string) => {
      if (settled) return;
      settled = true;
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      if (split < 0) return resolve({ status: 0, error: error ?? 'no answer' });
      const [statusLine, ...headerLines] = text.slice(0, split).split('\r\n');
      const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: Buffer.from(text.slice(split + 4), 'latin1').toString('utf8') });
    };
    socket.on('data', (d) => chunks.push(d));
    socket.on('close', () => finish());
    socket.on('error', (e) => finish(e.message));
    socket.setTimeout(20_000, () => {
      socket.destroy();
      finish('timeout');
    });
    socket.write(head);
    if (options.abortAfter !== undefined) {
      socket.write(body.subarray(0, options.abortAfter), () => socket.destroy());
      return;
    }
    // Write in pieces; the server may answer and close early (e.g. 413), which is fine.
    let offset = 0;
    const pump = () => {
      while (offset < body.length) {
        const piece = body.subarray(offset, offset + 65536);
        offset += piece.length;
        if (!socket.write(piece)) return void socket.once('drain', pump);
      }
    };
    pump();
  });
}

function head(contentType: string, length: number | string | null, extra = ''): string {
  return (
    `POST /v1/captures HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${tenant.deviceKey}\r\nConnection: close\r\n` +
    `Content-Type: ${contentType}\r\n${length === null ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${length}\r\n`}${extra}\r\n`
  );
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}
function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
/** A PNG whose header declares width x height over a tiny deflate stream: a decompression bomb. */
function pngBomb(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit greyscale
  const idat = zlib.deflateSync(Buffer.alloc(1_000_000), { level: 9 });
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', Buffer.alloc(0))]);
}

const ALLOWED = new Set([202, 400, 413, 415, 422]);

function checkAnswer(label: string, answer: RawAnswer | { status: number; body: any }) {
  expect(answer.status, `${label}: ${JSON.stringify(answer)}`).not.toBe(0);
  expect(ALLOWED.has(answer.status), `${label}: status ${answer.status} ${JSON.stringify(answer)}`).toBe(true);
  const raw = (answer as { body: unknown }).body;
  let body: any;
  try {
    body = typeof raw === 'string' ? JSON.parse(raw) : raw;
  } catch {
    throw new Error(`${label}: not JSON: ${JSON.stringify(answer).slice(0, 500)}`);
  }
  if (answer.status === 202) {
    expect(body.batchId, label).toEqual(expect.any(String));
    for (const c of body.captures) expect(c.filename === null || !/[\\/]/.test(c.filename), label).toBe(true);
  } else {
    expect(body.error, label).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String) }));
  }
}

async function tmpFiles(): Promise<string[]> {
  return fs.readdir(path.join(t.env.config.blobsDir, 'tmp')).catch(() => []);
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(path.join(entry.parentPath, entry.name));
  }
  return out;
}

describe('upload fuzzing', () => {
  it('survives crafted hostile requests', async () => {
    const good = await makeImage();
    const bomb = pngBomb(100_000, 100_000);
    // A real JPEG whose frame header claims 65000 x 65000 pixels.
    const jpegBomb = Buffer.from(good);
    for (let i = 2; i < jpegBomb.length - 9; i++) {
      if (jpegBomb[i] === 0xff && jpegBomb[i + 1] === 0xc0) {
        jpegBomb.writeUInt16BE(65000, i + 5);
        jpegBomb.writeUInt16BE(65000, i + 7);
        break;
      }
    }
    const zipFile = Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), zlib.deflateRawSync(Buffer.alloc(2_000_000))]);
    const cases: { label: string; run: () => Promise<RawAnswer | { status: number; body: any }>; expect?: number }[] = [
      { label: 'jpeg with huge declared frame', run: () => upload(t, tenant.deviceKey, [{ name: 'images', file: jpegBomb }]), expect: 413 },
      { label: 'zip archive posing as a jpeg', run: () => upload(t, tenant.deviceKey, [{ name: 'images', file: zipFile, filename: 'a.jpg' }]), expect: 415 },
      { label: 'png decompression bomb', run: () => upload(t, tenant.deviceKey, [{ name: 'images', file: bomb, type: 'image/png' }]), expect: 413 },
      {
        label: 'bomb next to a good file',
        run: () => upload(t, tenant.deviceKey, [{ name: 'images', file: bomb }, { name: 'images', file: good }]),
        expect: 202,
      },
      {
        label: 'huge declared Content-Length',
        run: () => {
          const { body, contentType } = multipart([{ name: 'images', file: good }]);
          return rawRequest(head(contentType, 10_000_000_000), body);
        },
        expect: 413,
      },
      {
        label: 'declared length shorter than the body',
        run: () => {
          const { body, contentType } = multipart([{ name: 'images', file: good }]);
          return rawRequest(head(contentType, 100), body);
        },
        expect: 400,
      },
      {
        label: 'chunked upload beyond the total limit',
        run: () => {
          const parts: Part[] = Array.from({ length: 6 }, (_, i) => ({ name: 'images', file: Buffer.concat([good, Buffer.alloc(250_000, i)]) }));
          const { body, contentType } = multipart(parts);
          const chunked = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
          return rawRequest(head(contentType, null), chunked);
        },
        expect: 413,
      },
      {
        label: 'gzip content encoding',
        run: () => {
          const { body, contentType } = multipart([{ name: 'images', file: good }]);
          return rawRequest(head(contentType, zlib.gzipSync(body).length, 'Content-Encoding: gzip\r\n'), zlib.gzipSync(body));
        },
        expect: 415,
      },
      {
        label: 'path traversal file names',
        run: () =>
          upload(t, tenant.deviceKey, [
            { name: 'images', file: good, filename: '../../../../etc/passwd' },
            { name: 'images', file: good, filename: '..\\\\..\\\\windows\\\\win.ini' },
            { name: 'images', file: good, filename: '/abs/olute.jpg' },
            { name: 'images', file: good, filename: 'x'.repeat(5000) },
          ]),
        expect: 202,
      },
      {
        label: 'many tiny parts',
        run: () => upload(t, tenant.deviceKey, Array.from({ length: 3000 }, () => ({ name: 'images', file: Buffer.from([0xff]) }))),
        expect: 413,
      },
      {
        label: 'many fields',
        run: () => upload(t, tenant.deviceKey, Array.from({ length: 500 }, () => ({ name: 'capturedAt', value: '2026-01-01T00:00:00Z' }))),
      },
      {
        label: 'huge field value',
        run: () => upload(t, tenant.deviceKey, [{ name: 'capturedAt', value: '2'.repeat(100_000) }, { name: 'images', file: good }]),
        expect: 400,
      },
      { label: 'no boundary', run: () => rawRequest(head('multipart/form-data', 5), Buffer.from('hello')), expect: 415 },
      { label: 'empty boundary', run: () => rawRequest(head('multipart/form-data; boundary=', 5), Buffer.from('hello')), expect: 400 },
      {
        label: 'no closing boundary',
        run: () => {
          const { body, contentType } = multipart([{ name: 'images', file: good }]);
          const cut = body.subarray(0, body.length - 20);
          return rawRequest(head(contentType, cut.length), cut);
        },
        expect: 400,
      },
      {
        label: 'part without Content-Disposition',
        run: () => {
          const b = 'XyZ';
          const body = Buffer.from(`--${b}\r\nContent-Type: image/jpeg\r\n\r\nabc\r\n--${b}--\r\n`);
          return rawRequest(head(`multipart/form-data; boundary=${b}`, body.length), body);
        },
      },
      {
        label: 'enormous part header',
        run: () => {
          const b = 'XyZ';
          const body = Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="images"; filename="a.jpg"\r\nX-Junk: ${'j'.repeat(100_000)}\r\n\r\nabc\r\n--${b}--\r\n`);
          return rawRequest(head(`multipart/form-data; boundary=${b}`, body.length), body);
        },
        expect: 400,
      },
      {
        label: 'exactly the per-file limit and one byte over',
        run: () =>
          upload(t, tenant.deviceKey, [
            { name: 'images', file: Buffer.concat([good, Buffer.alloc(300_000 - good.length, 1)]) },
            { name: 'images', file: Buffer.concat([good, Buffer.alloc(300_001 - good.length, 2)]) },
          ]),
        expect: 202,
      },
    ];
    for (const c of cases) {
      const answer = await c.run();
      checkAnswer(c.label, answer);
      if (c.expect) expect(answer.status, `${c.label}: ${JSON.stringify(answer)}`).toBe(c.expect);
    }

    // The traversal names stayed names: nothing was written outside the blob store's layout.
    const files = await filesUnder(t.env.config.DATA_DIR);
    for (const f of files) expect(path.relative(t.env.config.blobsDir, f), f).toMatch(/^(captures\/[0-9a-f]{2}\/[0-9a-f]{64}|tmp\/.*)$/);
  });

  it('survives clients that vanish mid-upload', async () => {
    const { body, contentType } = multipart([{ name: 'images', file: Buffer.concat([await makeImage(), Buffer.alloc(200_000, 3)]) }]);
    for (const cut of [10, 200, 5000, 150_000]) {
      const answer = await rawRequest(head(contentType, body.length), body, { abortAfter: cut });
      expect(answer.status).toBe(0);
    }
    // The server frees each cut upload's slot when it sees the socket close, which may come a
    // moment after the client gave up: until then a 429 is the right answer, never a hang or 500.
    const deadline = Date.now() + 5000;
    let r = await upload(t, tenant.deviceKey, [{ name: 'images', file: await makeImage() }]);
    while (r.status === 429 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      r = await upload(t, tenant.deviceKey, [{ name: 'images', file: await makeImage() }]);
    }
    expect(r.status).toBe(202);
  });

  it('caps parallel uploads per device with 429, other devices unaffected', async () => {
    // Temp files of the cut uploads before are gone: each one left now is a held upload's below.
    expect(await pollUntil(tmpFiles, (files) => files.length === 0)).toEqual([]);
    const { body, contentType } = multipart([{ name: 'images', file: Buffer.concat([await makeImage(), Buffer.alloc(100_000, 9)]) }]);
    const answered = ['', '', '', ''];
    const held = await Promise.all(
      answered.map(
        (_, i) =>
          new Promise<net.Socket>((resolve) => {
            const socket = net.connect(port, '127.0.0.1', () => {
              socket.write(head(contentType, body.length));
              socket.write(body.subarray(0, 1000), () => resolve(socket));
            });
            socket.on('data', (chunk: Buffer) => (answered[i] += chunk.toString()));
            socket.on('error', () => undefined);
          }),
      ),
    );
    // A failed expectation below must not leave them open for the next test.
    onTestFinished(() => held.forEach((socket) => socket.destroy()));
    // Each held upload is in the handler, past the per-device check, once it stages its file. No
    // upload of this device is sent before that: one overtaking a held upload would take a slot for
    // a moment and get that upload refused (what the earlier polling rewrite did: the fifth upload
    // was polled at once, a held one got the 429, and three held slots never refused anything).
    expect(await pollUntil(tmpFiles, (files) => files.length >= 4)).toHaveLength(4);
    const refused = await upload(t, tenant.deviceKey, [{ name: 'images', file: await makeImage() }]);
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('too_many_requests');
    expect(refused.headers.get('retry-after')).toBe('2');
    // The four held uploads all got a slot (none was answered): the cap is four, not fewer.
    expect(answered).toEqual(['', '', '', '']);
    const other = await t.call('POST', `/v1/stores/${tenant.storeId}/devices`, { key: tenant.merchantKey, json: { name: 'robot-other' } });
    expect((await upload(t, other.body.key, [{ name: 'images', file: await makeImage() }])).status).toBe(202);
    // Closing them frees the slots once the server sees the sockets close: until then a 429.
    for (const socket of held) socket.destroy();
    const image = await makeImage();
    const freed = await pollUntil(() => upload(t, tenant.deviceKey, [{ name: 'images', file: image }]), (r) => r.status !== 429);
    expect(freed.status).toBe(202);
  });

  it('answers random and mutated uploads with 202 or a 4xx in the error schema', async () => {
    // Fixed by default so CI is repeatable (514427 once found a 500); FUZZ_SEED=random explores.
    const seed = process.env.FUZZ_SEED === 'random' ? Date.now() % 1_000_000 : Number(process.env.FUZZ_SEED ?? 514427);
    const rnd = prng(seed);
    const seeds = [await makeImage('jpeg', 80), await makeImage('png', 40), await makeImage('jpeg', 64, { noise: true })];
    const names = ['images', 'images', 'images', 'images[]', 'image', 'capturedAt', '', 'im\u0000ages', 'ímages'];
    const types = ['image/jpeg', 'image/png', 'text/plain', 'application/octet-stream', '', 'image/jpeg; charset=evil\r\nX: y'];

    const mutate = (buf: Buffer): Buffer => {
      const out = Buffer.from(buf);
      switch (rnd.int(5)) {
        case 0: // flip bytes
          for (let i = 0; i < 1 + rnd.int(20); i++) out[rnd.int(out.length)] = rnd.int(256);
          return out;
        case 1: // truncate
          return out.subarray(0, rnd.int(out.length));
        case 2: // random bytes behind a real signature
          return Buffer.concat([out.subarray(0, 4 + rnd.int(30)), rnd.bytes(rnd.int(4000))]);
        case 3: // pure noise
          return rnd.bytes(rnd.int(3000));
        default:
          return out;
      }
    };

    const statuses = new Map<number, number>();
    for (let i = 0; i < 120; i++) {
      let answer: RawAnswer | { status: number; body: any };
      const label = `seed ${seed} iteration ${i}`;
      if (rnd.next() < 0.2) {
        // Raw garbage, possibly with a plausible multipart header.
        const boundary = rnd.pick(['abc', '----x', '', '"quoted"', 'a'.repeat(80)]);
        const body = rnd.next() < 0.5 ? rnd.bytes(rnd.int(5000)) : Buffer.concat([Buffer.from(`--${boundary}\r\n`), rnd.bytes(rnd.int(3000))]);
        answer = await rawRequest(head(`multipart/form-data; boundary=${boundary}`, body.length), body);
      } else {
        const parts: Part[] = [];
        if (rnd.next() < 0.3) parts.push({ name: 'capturedAt', value: rnd.pick(['2026-03-01T10:00:00Z', 'nope', '2026-13-01T00:00:00Z', '']) });
        const count = 1 + rnd.int(5);
        for (let p = 0; p < count; p++) {
          parts.push({ name: rnd.pick(names), file: mutate(rnd.pick(seeds)), filename: rnd.pick(['a.jpg', '../x', '', 'ü.png', '%00.jpg']), type: rnd.pick(types) });
        }
        answer = await upload(t, tenant.deviceKey, parts);
      }
      checkAnswer(label, answer);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    }
    expect(statuses.get(202) ?? 0).toBeGreaterThan(0);
    expect([...statuses.keys()].some((s) => s >= 400)).toBe(true);

    // Still healthy, still accepting, and no half-written temp files left behind.
    expect((await t.call('GET', '/healthz')).status).toBe(200);
    expect((await upload(t, tenant.deviceKey, [{ name: 'images', file: await makeImage() }])).status).toBe(202);
    // Temp files of refused uploads are removed as their requests end, which may trail the answer.
    expect(await pollUntil(tmpFiles, (files) => files.length === 0)).toEqual([]);
  });
});
