/**
 * Streaming multipart intake. Each image part is staged in the blob store (hashed for its content
 * address) while its first bytes are kept to sniff the real format and read the header (size and
 * EXIF time) without decoding pixels. The declared part content type and file name are ignored.
 * Accepted files stay staged: the caller commits them once it has recorded them, or discards them.
 *
 * Three kinds of failure:
 * - request-level (not multipart, malformed body, too many files or parts, total size, unexpected
 *   or misplaced fields): the whole request fails with a 4xx ApiError and nothing is recorded;
 * - per-file (too large, empty, not an image, header unreadable, too many pixels): the file gets a
 *   `rejection` and the other files carry on;
 * - the blob store's (disk full or unwritable): the whole request fails with 507 or 503 and
 *   Retry-After (see storageError), and nothing staged is left behind.
 */
import type { IncomingMessage } from 'node:http';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import busboy from 'busboy';
import { ImageError, type ImageErrorCode } from '../imaging/errors.js';
import type { ImageHeader } from '../imaging/prepare.js';
import { sniffImageFormat } from '../imaging/sniff.js';
import { BlobStoreFault, BlobTooLargeError, type BlobStore, type StagedBlob } from '../storage/blobs.js';
import { ApiError, storageError } from './errors.js';

/** Bytes kept in memory per file for the format sniff and the header read. */
const HEAD_BYTES = 256 * 1024;
/** Allowance for multipart framing on top of the payload when checking Content-Length. */
const FRAMING_BYTES = 64 * 1024;

export type FileRejection = { status: 413 | 415 | 422; code: string; message: string };

export type ReceivedImage = {
  /** Position of the part among the image parts of the request, from 0. */
  index: number;
  /** The client's file name (display only: storage is content-addressed), sanitised. */
  filename: string | null;
  /** Staged, not yet at its key: commit it once recorded, or discard it. */
  stored?: StagedBlob & { header: ImageHeader };
  rejection?: FileRejection;
};

export type ReceivedForm = { images: ReceivedImage[]; fields: Map<string, string[]> };

export type ReadHeader = (bytes: Buffer, limits: { maxPixels: number }) => Promise<ImageHeader>;

export type MultipartOptions = {
  blobs: BlobStore;
  /** Blob key prefix of stored images. */
  prefix: string;
  /** Names accepted for image parts. */
  imageFields: readonly string[];
  /** Names accepted for text fields; any other is a 400. */
  textFields: readonly string[];
  /** Text fields must precede every image part (capturedAt). */
  fieldsBeforeImages: boolean;
  maxFiles: number;
  maxFileBytes: number;
  maxTotalBytes: number;
  maxPixels: number;
  readHeader: ReadHeader;
};

class TotalLimitError extends Error {}

/** Counts bytes against the request's total and keeps the first HEAD_BYTES of the file. */
class Tap extends Transform {
  private chunks: Buffer[] = [];
  private kept = 0;
  constructor(private readonly budget: { used: number; max: number }) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.budget.used += chunk.length;
    if (this.budget.used > this.budget.max) return done(new TotalLimitError());
    if (this.kept < HEAD_BYTES) {
      const part = chunk.subarray(0, HEAD_BYTES - this.kept);
      this.chunks.push(Buffer.from(part));
      this.kept += part.length;
    }
    done(null, chunk);
  }
  head(): Buffer {
    return Buffer.concat(this.chunks, this.kept);
  }
}

const REJECTION_STATUS: Record<ImageErrorCode, FileRejection['status']> = {
  too_large: 413,
  unsupported_format: 415,
  truncated: 422,
  empty: 422,
};

export function rejectionFromImageError(error: ImageError): FileRejection {
  return { status: REJECTION_STATUS[error.code] ?? 422, code: error.code, message: error.message };
}

export function sanitizeFilename(name: string | undefined): string | null {
  if (!name) return null;
  // eslint-disable-next-line no-control-regex
  const clean = name.replace(/[\u0000-\u001f\u007f]/g, '').replace(/^.*[\\/]/, '').slice(0, 200);
  return clean === '' ? null : clean;
}

/** Rejects requests that cannot be a multipart upload within the limits, before reading a byte. */
function precheck(req: IncomingMessage, options: MultipartOptions): void {
  const type = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data\s*;/i.test(type)) {
    throw new ApiError(415, 'unsupported_media_type', 'send the images as multipart/form-data');
  }
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity') {
    throw new ApiError(415, 'unsupported_media_type', `Content-Encoding ${encoding} is not accepted; send the body uncompressed`);
  }
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    const length = Number(declared);
    if (!Number.isSafeInteger(length) || length < 0) throw new ApiError(400, 'bad_request', 'invalid Content-Length');
    if (length > options.maxTotalBytes + FRAMING_BYTES + 1024 * options.maxFiles) {
      throw new ApiError(413, 'request_too_large', `the request body exceeds the limit of ${options.maxTotalBytes} bytes`);
    }
  }
}

export async function receiveMultipart(req: IncomingMessage, options: MultipartOptions): Promise<ReceivedForm> {
  precheck(req, options);
  // A client that vanished while the request waited (auth, rate limits) has already closed it: the
  // 'close' listener would never fire and the upload would wait forever.
  if (req.destroyed) throw new ApiError(400, 'invalid_multipart', 'the upload was interrupted');
  const parser = createParser(req, options);
  return new Promise<ReceivedForm>((resolve, reject) => new FormReceiver(req, parser, options, resolve, reject).start());
}

function createParser(req: IncomingMessage, options: MultipartOptions): busboy.Busboy {
  try {
    return busboy({
      headers: req.headers,
      preservePath: false,
      limits: {
        // One more byte than allowed, so the blob store sees the overflow and refuses the file.
        fileSize: options.maxFileBytes + 1,
        files: options.maxFiles,
        fields: options.textFields.length === 0 ? 0 : Math.max(options.maxFiles, 1) + 10,
        fieldSize: 1024,
        parts: options.maxFiles * 2 + 20,
        headerPairs: 20,
      },
    });
  } catch (error) {
    throw new ApiError(400, 'invalid_multipart', `malformed multipart request: ${(error as Error).message}`);
  }
}

/** One request's parts as they stream in: images staged one by one, text fields collected, the first failure ending it all. */
class FormReceiver {
  private readonly budget: { used: number; max: number };
  private readonly images: Promise<ReceivedImage>[] = [];
  private readonly fields = new Map<string, string[]>();
  private failure: ApiError | undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly parser: busboy.Busboy,
    private readonly options: MultipartOptions,
    private readonly resolve: (form: ReceivedForm) => void,
    private readonly reject: (error: ApiError) => void,
  ) {
    this.budget = { used: 0, max: options.maxTotalBytes };
  }

  start(): void {
    const { req, parser, options } = this;
    parser.on('file', (name, file, info) => this.onFile(name, file, info.filename));
    parser.on('field', (name, value, info) => this.onField(name, value, info.valueTruncated));
    // A second image where one is expected is a malformed request; past a batch's limit, a request too large.
    parser.on('filesLimit', () => this.fail(new ApiError(options.maxFiles === 1 ? 400 : 413, 'too_many_files', `at most ${options.maxFiles} file${options.maxFiles === 1 ? '' : 's'} per request`)));
    parser.on('partsLimit', () => this.fail(new ApiError(413, 'too_many_parts', 'too many parts in the request')));
    // With no text field allowed, busboy reports the first one as over its limit of 0.
    parser.on('fieldsLimit', () =>
      this.fail(options.textFields.length === 0 ? new ApiError(400, 'unexpected_field', 'this endpoint takes no text fields, only the image') : new ApiError(413, 'too_many_parts', 'too many fields in the request')),
    );
    parser.on('error', (error: Error) => this.fail(new ApiError(400, 'invalid_multipart', `malformed multipart request: ${error.message}`)));
    req.on('error', (error) => this.fail(new ApiError(400, 'invalid_multipart', `the upload was interrupted: ${error.message}`)));
    req.on('close', () => {
      if (!req.complete) this.fail(new ApiError(400, 'invalid_multipart', 'the upload was interrupted'));
    });
    parser.on('finish', () => this.finish());
    req.pipe(parser);
  }

  private finish(): void {
    Promise.all(this.images).then(
      (received) => {
        if (!this.failure) this.resolve({ images: received, fields: this.fields });
      },
      (error: unknown) => this.fail(error instanceof BlobStoreFault ? storageError(error) : new ApiError(500, 'internal_error', (error as Error).message)),
    );
  }

  private fail(error: ApiError): void {
    if (this.failure) return;
    this.failure = error;
    // Nothing of a failed request is recorded: drop what was staged.
    void Promise.allSettled(this.images).then((settled) =>
      Promise.allSettled(settled.map((s) => (s.status === 'fulfilled' && s.value.stored ? this.drop(s.value.stored) : undefined))),
    );
    this.req.unpipe(this.parser);
    // Discard the rest of the body so the answer can be read by the client.
    this.req.resume();
    this.parser.destroy();
    this.reject(error);
  }

  /** A staged file that is not kept: a store too sick to delete it leaves it to the staged sweep. */
  private drop(stored: StagedBlob): Promise<void> {
    return this.options.blobs.discard(stored).catch(() => undefined);
  }

  private onFile(name: string, file: Readable & { truncated?: boolean }, filename: string | undefined): void {
    // Busboy destroys an unfinished file stream with an error when the request fails; that error
    // is reported through the parser, so it must not surface as an unhandled stream error.
    file.on('error', () => undefined);
    if (this.failure) return void file.resume();
    const { imageFields } = this.options;
    if (typeof name !== 'string' || !imageFields.includes(name)) {
      file.resume();
      return this.fail(new ApiError(400, 'unexpected_field', `unexpected file field ${JSON.stringify(String(name ?? '').slice(0, 50))}; send images as ${imageFields.map((f) => `"${f}"`).join(' or ')}`));
    }
    this.images.push(this.stageImage(this.images.length, sanitizeFilename(filename), file));
  }

  private onField(name: string, value: string, truncated: boolean): void {
    if (this.failure) return;
    if (typeof name !== 'string' || !this.options.textFields.includes(name)) {
      return this.fail(new ApiError(400, 'unexpected_field', `unexpected field ${JSON.stringify(String(name ?? '').slice(0, 50))}`));
    }
    if (truncated) return this.fail(new ApiError(400, 'validation_error', `field ${name} is too long`));
    // busboy hands over no value for some malformed parts (found by the fuzz test).
    if (typeof value !== 'string') return this.fail(new ApiError(400, 'validation_error', `field ${name} has no value`));
    if (this.options.fieldsBeforeImages && this.images.length > 0) {
      return this.fail(new ApiError(400, 'validation_error', `${name} fields must come before the images`));
    }
    const list = this.fields.get(name) ?? [];
    list.push(value);
    this.fields.set(name, list);
  }

  /** Streams one image part into the blob store, then checks what it is; a rejection leaves nothing staged. */
  private async stageImage(index: number, filename: string | null, file: Readable & { truncated?: boolean }): Promise<ReceivedImage> {
    const { options } = this;
    const tooLarge = { status: 413, code: 'too_large', message: `the file exceeds the limit of ${options.maxFileBytes} bytes` } as const;
    const tap = new Tap(this.budget);
    // Errors reach stageStream through the pipeline; this keeps one raised before it attaches from escaping.
    tap.on('error', () => undefined);
    file.on('error', (error: Error) => tap.destroy(error));
    file.pipe(tap);
    let stored: StagedBlob;
    try {
      stored = await options.blobs.stageStream(options.prefix, tap, options.maxFileBytes);
    } catch (error) {
      file.unpipe(tap);
      file.resume();
      if (error instanceof BlobTooLargeError) return { index, filename, rejection: tooLarge };
      if (error instanceof TotalLimitError) this.fail(new ApiError(413, 'request_too_large', `the upload exceeds the limit of ${options.maxTotalBytes} bytes in total`));
      else if (error instanceof BlobStoreFault) this.fail(storageError(error));
      else this.fail(new ApiError(400, 'invalid_multipart', `the upload was interrupted: ${(error as Error).message}`));
      return { index, filename, rejection: { status: 422, code: 'aborted', message: 'the request failed' } };
    }
    if (file.truncated) {
      await this.drop(stored);
      return { index, filename, rejection: tooLarge };
    }
    const header = await inspect(stored, tap.head(), options).catch(async (error: unknown) => {
      await this.drop(stored);
      throw error;
    });
    if ('status' in header) {
      await this.drop(stored);
      return { index, filename, rejection: header };
    }
    return { index, filename, stored: { ...stored, header } };
  }
}

/** Sniffs the real format and reads the header; a rejection when the file is not a usable image. */
async function inspect(stored: StagedBlob, head: Buffer, options: MultipartOptions): Promise<ImageHeader | FileRejection> {
  if (stored.bytes === 0) return { status: 422, code: 'empty', message: 'the file is empty' };
  if (!sniffImageFormat(head.subarray(0, 64))) {
    return { status: 415, code: 'unsupported_format', message: 'not a supported image (jpeg, png, webp, gif, tiff, avif/heif)' };
  }
  const limits = { maxPixels: options.maxPixels };
  try {
    return await options.readHeader(head, limits);
  } catch (error) {
    if (!(error instanceof ImageError)) throw error;
    // The header may lie past the first bytes (large EXIF or ICC blocks): retry on the whole file.
    if (error.code === 'truncated' && stored.bytes > head.length) {
      try {
        return await options.readHeader(await options.blobs.readStaged(stored), limits);
      } catch (retryError) {
        if (retryError instanceof ImageError) return rejectionFromImageError(retryError);
        throw retryError;
      }
    }
    return rejectionFromImageError(error);
  }
}
