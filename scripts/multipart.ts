/** Multipart bodies for the tests and benchmarks that call the intake API. */

export type Part = { name: string; value: string } | { name: string; file: Uint8Array; filename?: string; type?: string };

/**
 * A multipart/form-data body built in memory, byte by byte: the tests control every byte of it
 * (order, types, names), and the intake bench sends it pre-encoded.
 */
export function multipart(parts: Part[], boundary = `----fp${Math.random().toString(16).slice(2)}`): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n`));
    if ('value' in part) {
      chunks.push(Buffer.from(`Content-Disposition: form-data; name="${part.name}"\r\n\r\n${part.value}\r\n`));
    } else {
      chunks.push(
        Buffer.from(
          `Content-Disposition: form-data; name="${part.name}"; filename="${part.filename ?? 'file.jpg'}"\r\nContent-Type: ${part.type ?? 'image/jpeg'}\r\n\r\n`,
        ),
      );
      chunks.push(Buffer.from(part.file));
      chunks.push(Buffer.from('\r\n'));
    }
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}
