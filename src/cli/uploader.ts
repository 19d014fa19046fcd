/**
 * The resumable upload: hash every file, ask the server which hashes this device already sent
 * (POST /v1/captures/lookup, no bytes), then send the rest in multipart batches with a bounded
 * number of requests in flight. The server dedupes per device too, so a batch cut off by a crash
 * and sent again never creates a capture twice.
 */
import path from 'node:path';
import { mapLimit, sha256File, type LocalFile } from './files.js';
import { HttpError, type ApiClient } from './http.js';
import { multipartBody } from './multipart.js';
import type { Progress } from './progress.js';

export type ErrorInfo = { code: string; message: string };

export type FileOutcome =
  /** Sent in this run and accepted (new, or the server already had it: `duplicate`). */
  | 'sent'
  /** The lookup found it: not sent again. */
  | 'known'
  /** Same bytes as another file of this run: shares that file's capture. */
  | 'same-content'
  /** Refused at intake (not an image, too large, ...). */
  | 'rejected'
  /** Could not be sent (retries exhausted, interrupted); a rerun resumes it. */
  | 'unsent'
  /** Could not be read locally. */
  | 'unreadable';

export type FileResult = {
  file: LocalFile;
  sha256?: string;
  outcome: FileOutcome;
  captureId?: string;
  batchId?: string;
  status?: string;
  duplicate?: boolean;
  error?: ErrorInfo;
  capturedAt?: string;
};

export type UploadOptions = {
  batchSize: number;
  batchBytes: number;
  concurrency: number;
  hashConcurrency: number;
  capturedAtFromMtime: boolean;
  signal?: AbortSignal;
};

export type UploadRun = { results: FileResult[]; batchIds: string[]; requests: { lookup: number; upload: number } };

/** An error that ends the whole run (bad key, wrong URL): retrying other batches is pointless. */
export class FatalError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'FatalError';
  }
}

export const LOOKUP_CHUNK = 1000;
const EARLIEST = Date.parse('2001-01-01T00:00:00Z');
const SPLITTABLE = new Set(['request_too_large', 'too_many_files', 'too_many_parts']);

/** The server refuses device times before 2001 or more than a day ahead; such files go without one. */
export function plausibleMtime(mtime: Date, now = Date.now()): boolean {
  const t = mtime.getTime();
  return Number.isFinite(t) && t >= EARLIEST && t <= now + 23 * 3600_000;
}

/** Batches of at most `maxFiles` files and `maxBytes` bytes (a bigger file goes alone); items of different keys never share one. */
export function planBatches<T>(items: T[], maxFiles: number, maxBytes: number, sizeOf: (item: T) => number, key: (item: T) => string = () => ''): T[][] {
  const batches: T[][] = [];
  const open = new Map<string, { items: T[]; bytes: number }>();
  for (const item of items) {
    const k = key(item);
    let current = open.get(k);
    if (current && (current.items.length >= maxFiles || (current.items.length > 0 && current.bytes + sizeOf(item) > maxBytes))) {
      batches.push(current.items);
      current = undefined;
    }
    if (!current) {
      current = { items: [], bytes: 0 };
      open.set(k, current);
    }
    current.items.push(item);
    current.bytes += sizeOf(item);
  }
  for (const current of open.values()) if (current.items.length) batches.push(current.items);
  return batches;
}

const fatalStatus = (status: number | null) => status === 401 || status === 403 || status === 404 || status === 405;

function fatalMessage(error: HttpError): string {
  if (error.status === 401) return `the server refused the device key (${error.message}); check --device-key / FACEPERKS_DEVICE_KEY`;
  if (error.status === 403) return `this key may not upload (${error.message}); uploads need a device key`;
  return `the server does not offer this endpoint (${error.message}); check --url / FACEPERKS_URL`;
}

/** Hashes, looks up and uploads `files`, filling in one result per file (in input order). */
export async function uploadFiles(client: ApiClient, files: LocalFile[], options: UploadOptions, progress: Progress): Promise<UploadRun> {
  const results: FileResult[] = files.map((file) => ({ file, outcome: 'unsent' }));
  const run: UploadRun = { results, batchIds: [], requests: { lookup: 0, upload: 0 } };

  // 1. sha256 of every file, streamed.
  progress.start('hashing', files.length, files.reduce((n, f) => n + f.size, 0));
  await mapLimit(results, options.hashConcurrency, async (result) => {
    if (options.signal?.aborted) return;
    try {
      result.sha256 = await sha256File(result.file.path, (n) => progress.bytes(n));
    } catch (error) {
      result.outcome = 'unreadable';
      result.error = { code: 'unreadable', message: (error as Error).message };
      progress.log(`cannot read ${result.file.display}: ${(error as Error).message}`);
    }
    progress.files(1);
  });
  progress.finish();
  options.signal?.throwIfAborted();

  // 2. One result per distinct content; later files with the same bytes follow the first.
  const firstBySha = new Map<string, FileResult>();
  const followers: [FileResult, FileResult][] = [];
  for (const result of results) {
    if (!result.sha256) continue;
    const first = firstBySha.get(result.sha256);
    if (first) followers.push([result, first]);
    else firstBySha.set(result.sha256, result);
  }

  // 3. Which of them does the server already have (for this device)?
  const hashes = [...firstBySha.keys()];
  progress.start('checking', hashes.length, 0);
  for (let i = 0; i < hashes.length; i += LOOKUP_CHUNK) {
    const chunk = hashes.slice(i, i + LOOKUP_CHUNK);
    run.requests.lookup++;
    let answer: { known: { sha256: string; id: string; status: string; error?: ErrorInfo }[] };
    try {
      answer = await client.json('POST', '/v1/captures/lookup', { sha256: chunk }, { signal: options.signal, onRetry: retryLogger(progress, 'lookup') });
    } catch (error) {
      if (error instanceof HttpError && fatalStatus(error.status)) throw new FatalError(fatalMessage(error));
      throw error;
    }
    for (const known of answer.known) {
      const result = firstBySha.get(known.sha256);
      if (!result) continue;
      Object.assign(result, { outcome: 'known', captureId: known.id, status: known.status, ...(known.error ? { error: known.error } : {}) });
      progress.note('already sent');
    }
    progress.files(chunk.length);
  }
  progress.finish();

  // 4. Upload the rest.
  const pending = [...firstBySha.values()].filter((r) => r.outcome === 'unsent');
  const withTime = (r: FileResult) => options.capturedAtFromMtime && plausibleMtime(r.file.mtime);
  if (options.capturedAtFromMtime) {
    const odd = pending.filter((r) => !withTime(r));
    if (odd.length) progress.log(`${odd.length} file(s) have an implausible mtime (before 2001 or in the future): sent without capturedAt (the server uses EXIF, else receipt)`);
  }
  const batches = planBatches(pending, options.batchSize, options.batchBytes, (r) => r.file.size, (r) => (withTime(r) ? 'mtime' : 'none'));
  progress.start('uploading', pending.length, pending.reduce((n, r) => n + r.file.size, 0));
  let fatal: FatalError | undefined;
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;

  const send = async (batch: FileResult[], label: string): Promise<void> => {
    if (signal.aborted) return;
    const times = batch.map((r) => (withTime(r) ? r.file.mtime.toISOString() : undefined));
    const fields = times[0] ? times.map((t) => ({ name: 'capturedAt', value: t! })) : [];
    const parts = batch.map((r) => ({ name: 'images', path: r.file.path, filename: path.basename(r.file.path), size: r.file.size }));
    run.requests.upload++;
    let answer: any;
    try {
      answer = await client.json('POST', '/v1/captures', undefined, {
        body: multipartBody(fields, parts),
        signal,
        onBytes: (n) => progress.bytes(n),
        onRetry: retryLogger(progress, label),
      });
    } catch (error) {
      if (signal.aborted) return;
      if (!(error instanceof HttpError)) throw error;
      if (fatalStatus(error.status)) {
        fatal ??= new FatalError(fatalMessage(error));
        stop.abort(fatal);
        return;
      }
      if (error.status === 413 && SPLITTABLE.has(error.code) && batch.length > 1) {
        const half = Math.ceil(batch.length / 2);
        progress.log(`${label}: ${error.code}; splitting it in two`);
        await send(batch.slice(0, half), `${label}a`);
        await send(batch.slice(half), `${label}b`);
        return;
      }
      const perFile: { index: number; error: ErrorInfo }[] | undefined = error.body?.error?.rejected;
      if (error.status !== null && error.status >= 400 && error.status < 500 && Array.isArray(perFile)) {
        for (const item of perFile) markRejected(batch[item.index], item.error, progress);
        return;
      }
      const info = { code: error.status !== null && error.status < 500 ? error.code : 'upload_failed', message: error.message };
      for (const r of batch) {
        if (error.status !== null && error.status >= 400 && error.status < 500 && error.status !== 429) markRejected(r, info, progress);
        else {
          r.error = info;
          progress.note('unsent');
        }
      }
      progress.log(`${label}: ${error.message}`);
      return;
    }
    run.batchIds.push(answer.batchId);
    for (const c of answer.captures ?? []) {
      const r = batch[c.index];
      if (!r) continue;
      Object.assign(r, { outcome: 'sent', captureId: c.id, batchId: answer.batchId, status: c.status, duplicate: Boolean(c.duplicate) });
      if (c.error) r.error = c.error;
      if (times[c.index]) r.capturedAt = times[c.index];
      if (c.sha256 && c.sha256 !== r.sha256) progress.log(`${r.file.display} changed while being sent (server sha256 ${c.sha256})`);
      progress.files(1);
    }
    for (const item of answer.rejected ?? []) if (batch[item.index]) markRejected(batch[item.index], item.error, progress);
  };

  let n = 0;
  await mapLimit(batches, options.concurrency, (batch) => send(batch, `batch ${++n}/${batches.length}`));
  progress.finish();
  if (fatal) throw fatal;
  options.signal?.throwIfAborted();

  for (const [result, first] of followers) {
    Object.assign(result, {
      outcome: first.outcome === 'sent' || first.outcome === 'known' ? 'same-content' : first.outcome,
      captureId: first.captureId,
      batchId: first.batchId,
      status: first.status,
      error: first.error,
    });
  }
  return run;
}

function markRejected(result: FileResult | undefined, error: ErrorInfo, progress: Progress): void {
  if (!result) return;
  result.outcome = 'rejected';
  result.error = { code: error?.code ?? 'rejected', message: error?.message ?? '' };
  progress.note('rejected');
  progress.files(1);
}

function retryLogger(progress: Progress, label: string) {
  return ({ attempt, delayMs, reason }: { attempt: number; delayMs: number; reason: string }) =>
    progress.log(`${label}: ${reason}; retry ${attempt} in ${(delayMs / 1000).toFixed(1)} s`);
}
