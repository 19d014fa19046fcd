/** A multipart/form-data body streamed from files, with its exact length known up front. */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Body } from './http.js';

export type FilePart = { name: string; path: string; filename: string; size: number };
export type FieldPart = { name: string; value: string };

const quote = (s: string) => s.replace(/[\r\n"\\]/g, (c) => (c === '"' ? '%22' : c === '\\' ? '\\\\' : ' '));

/** Text fields first (the API wants capturedAt before the images), then the files in order. */
export function multipartBody(fields: FieldPart[], files: FilePart[]): Body {
  const boundary = `----faceperks${randomBytes(12).toString('hex')}`;
  const heads = files.map((f) =>
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${quote(f.name)}"; filename="${quote(f.filename)}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    ),
  );
  const fieldBytes = Buffer.from(
    fields.map((f) => `--${boundary}\r\nContent-Disposition: form-data; name="${quote(f.name)}"\r\n\r\n${f.value}\r\n`).join(''),
  );
  const crlf = Buffer.from('\r\n');
  const tail = Buffer.from(`--${boundary}--\r\n`);
  const length = fieldBytes.length + heads.reduce((n, h, i) => n + h.length + files[i].size + crlf.length, 0) + tail.length;
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    length,
    async *stream() {
      if (fieldBytes.length) yield fieldBytes;
      for (let i = 0; i < files.length; i++) {
        yield heads[i];
        let sent = 0;
        for await (const chunk of createReadStream(files[i].path, { highWaterMark: 256 * 1024 })) {
          const buf = chunk as Buffer;
          // The declared length must hold: a file that grew is cut, one that shrank fails the attempt.
          const room = files[i].size - sent;
          if (room <= 0) break;
          const part = buf.length > room ? buf.subarray(0, room) : buf;
          sent += part.length;
          yield part;
        }
        if (sent !== files[i].size) throw new Error(`${files[i].path} changed size while being sent`);
        yield crlf;
      }
      yield tail;
    },
  };
}
