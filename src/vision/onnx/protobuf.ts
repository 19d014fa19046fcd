/**
 * The protobuf wire format, just enough to edit ONNX graphs: a message is a list of raw fields, so
 * fields this code does not understand round-trip byte for byte.
 */

/** 0 varint, 1 fixed 64-bit, 2 length-delimited, 5 fixed 32-bit. */
export type WireType = 0 | 1 | 2 | 5;
export type Field =
  | { field: number; wire: 0; value: bigint }
  | { field: number; wire: 1 | 5; value: Uint8Array }
  | { field: number; wire: 2; value: Uint8Array | Field[] };

function readVarint(bytes: Uint8Array, start: number): [bigint, number] {
  let value = 0n;
  let shift = 0n;
  let pos = start;
  for (;;) {
    if (pos >= bytes.length) throw new Error('protobuf: varint runs past the end');
    const b = bytes[pos++];
    value |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [value, pos];
    shift += 7n;
  }
}

export function parseMessage(bytes: Uint8Array): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const [key, afterKey] = readVarint(bytes, pos);
    pos = afterKey;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [value, next] = readVarint(bytes, pos);
      fields.push({ field, wire, value });
      pos = next;
    } else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      fields.push({ field, wire, value: bytes.subarray(pos, pos + size) });
      pos += size;
    } else if (wire === 2) {
      const [length, next] = readVarint(bytes, pos);
      const end = next + Number(length);
      if (end > bytes.length) throw new Error('protobuf: field runs past the end');
      fields.push({ field, wire, value: bytes.subarray(next, end) });
      pos = end;
    } else {
      throw new Error(`protobuf: unsupported wire type ${wire}`);
    }
  }
  return fields;
}

function varint(value: bigint | number): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}

export function serializeMessage(fields: Field[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of fields) {
    parts.push(Uint8Array.from(varint((f.field << 3) | f.wire)));
    if (f.wire === 0) {
      parts.push(Uint8Array.from(varint(f.value)));
    } else if (f.wire === 2) {
      const body = f.value instanceof Uint8Array ? f.value : serializeMessage(f.value);
      parts.push(Uint8Array.from(varint(body.length)), body);
    } else {
      parts.push(f.value);
    }
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The bytes of a length-delimited field (a serialised sub-message, string or packed array). */
export function bytesOf(f: Field): Uint8Array {
  if (f.wire !== 2) throw new Error(`protobuf: field ${f.field} is not length-delimited`);
  return f.value instanceof Uint8Array ? f.value : serializeMessage(f.value);
}

export function stringOf(f: Field): string {
  return decoder.decode(bytesOf(f));
}

/** Varints of a repeated integer field, packed or not. */
export function integersOf(fields: Field[], field: number): number[] {
  const out: number[] = [];
  for (const f of fields) {
    if (f.field !== field) continue;
    if (f.wire === 0) {
      out.push(Number(BigInt.asIntN(64, f.value)));
    } else if (f.wire === 2) {
      const packed = bytesOf(f);
      for (let pos = 0; pos < packed.length; ) {
        const [v, next] = readVarint(packed, pos);
        out.push(Number(BigInt.asIntN(64, v)));
        pos = next;
      }
    }
  }
  return out;
}

export const stringField = (field: number, value: string): Field => ({ field, wire: 2, value: encoder.encode(value) });
export const intField = (field: number, value: number): Field => ({ field, wire: 0, value: BigInt(value) });
export const messageField = (field: number, value: Field[]): Field => ({ field, wire: 2, value });

export function floatField(field: number, value: number): Field {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setFloat32(0, value, true);
  return { field, wire: 5, value: bytes };
}
