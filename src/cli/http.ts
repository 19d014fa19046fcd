/**
 * A small HTTP client for the CLI on node:http(s): JSON calls and streamed request bodies, with
 * retries (exponential backoff with full jitter, or the server's Retry-After when it sends one) on
 * network errors, 429 and 5xx, never on other 4xx. Non-idempotent calls retry only when the request
 * cannot have been processed (connection refused, DNS failure, 429, 503, 507 storage full).
 */
import http from 'node:http';
import https from 'node:https';

export type RetryPolicy = {
  /** Attempts in all (first try included). */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
};

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 500, maxDelayMs: 30_000 };

export type HttpResponse = { status: number; headers: http.IncomingHttpHeaders; body: any; text: string };

/** A request body: bytes, or a factory of a fresh stream per attempt (with its exact length). */
export type Body = { bytes: Buffer; contentType: string } | { stream: () => AsyncIterable<Buffer>; length: number; contentType: string };

export type RequestOptions = {
  method: string;
  path: string;
  json?: unknown;
  body?: Body;
  /** Retry only when the server cannot have acted on the request (default true: safe to repeat). */
  idempotent?: boolean;
  /** Called with each chunk's size as it is written, and with a negative total when an attempt is abandoned. */
  onBytes?: (delta: number) => void;
  /** Called before each retry wait. */
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
  signal?: AbortSignal;
};

/** An answer that will not get better by retrying (4xx other than 429), or retries exhausted. */
export class HttpError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly code: string,
    readonly body?: any,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
/** Answers saying the server did not act on the request. */
const NOT_PROCESSED = new Set([429, 503, 507]);

export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** Seconds or an HTTP date → milliseconds to wait, or undefined. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Full-jitter exponential backoff: uniform in [0, min(max, base * 2^(attempt-1))], at least 50 ms. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.max(50, Math.round(random() * cap));
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly key: string | undefined,
    readonly retry: RetryPolicy = DEFAULT_RETRY,
    private readonly timeoutMs = 120_000,
    /** Sees one line per attempt (--verbose). */
    private readonly trace?: (line: string) => void,
  ) {
    const url = new URL(baseUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--url must be http(s): ${baseUrl}`);
  }

  /** Performs the request with retries; resolves with a 2xx answer, throws HttpError otherwise. */
  async request(options: RequestOptions): Promise<HttpResponse> {
    const idempotent = options.idempotent ?? true;
    for (let attempt = 1; ; attempt++) {
      let reason: string;
      let waitMs: number | undefined;
      let retryable: boolean;
      try {
        const started = Date.now();
        const response = await this.once(options);
        this.trace?.(`${options.method} ${options.path} -> ${response.status} (${Date.now() - started} ms)`);
        if (response.status < 300) return response;
        const error = response.body?.error;
        const code = typeof error?.code === 'string' ? error.code : `http_${response.status}`;
        const message = typeof error?.message === 'string' ? error.message : response.text.slice(0, 200) || `HTTP ${response.status}`;
        retryable = isRetryableStatus(response.status) && (idempotent || NOT_PROCESSED.has(response.status));
        if (!retryable || attempt >= this.retry.attempts) {
          throw new HttpError(`${options.method} ${options.path}: ${response.status} ${code}: ${message}`, response.status, code, response.body);
        }
        reason = `${response.status} ${code}`;
        waitMs = parseRetryAfter(response.headers['retry-after']);
      } catch (error) {
        if (error instanceof HttpError || options.signal?.aborted) throw error;
        this.trace?.(`${options.method} ${options.path} -> ${(error as Error).message}`);
        const code = (error as NodeJS.ErrnoException).code ?? 'network_error';
        retryable = idempotent || NEVER_SENT.has(code);
        if (!retryable || attempt >= this.retry.attempts) {
          throw new HttpError(`${options.method} ${options.path}: ${(error as Error).message}`, null, code);
        }
        reason = `${code}: ${(error as Error).message}`;
      }
      // Retry-After is honoured as given (capped at 10 minutes), plus a little jitter to spread clients.
      const delayMs =
        waitMs !== undefined ? Math.min(waitMs, 600_000) + Math.round(Math.random() * 250) : backoffDelay(attempt, this.retry);
      options.onRetry?.({ attempt, delayMs, reason });
      await sleep(delayMs, options.signal);
    }
  }

  async json(method: string, path: string, json?: unknown, extra: Partial<RequestOptions> = {}): Promise<any> {
    return (await this.request({ method, path, json, ...extra })).body;
  }

  private once(options: RequestOptions): Promise<HttpResponse> {
    const url = new URL(options.path, this.baseUrl);
    const headers: Record<string, string | number> = { accept: 'application/json', 'user-agent': 'faceperks-cli/0.1' };
    if (this.key) headers.authorization = `Bearer ${this.key}`;
    let bytes: Buffer | undefined;
    let stream: (() => AsyncIterable<Buffer>) | undefined;
    if (options.json !== undefined) {
      bytes = Buffer.from(JSON.stringify(options.json));
      headers['content-type'] = 'application/json';
    } else if (options.body && 'bytes' in options.body) {
      bytes = options.body.bytes;
      headers['content-type'] = options.body.contentType;
    } else if (options.body) {
      stream = options.body.stream;
      headers['content-type'] = options.body.contentType;
      headers['content-length'] = options.body.length;
    }
    if (bytes) headers['content-length'] = bytes.length;
    const transport = url.protocol === 'https:' ? https : http;

    return new Promise<HttpResponse>((resolve, reject) => {
      let written = 0;
      let settled = false;
      const finish = (error: Error | null, response?: HttpResponse) => {
        if (settled) return;
        settled = true;
        options.signal?.removeEventListener('abort', onAbort);
        if (error) {
          if (written > 0) options.onBytes?.(-written);
          req.destroy();
          reject(error);
        } else resolve(response!);
      };
      const onAbort = () => finish(options.signal!.reason instanceof Error ? options.signal!.reason : new Error('aborted'));
      const req = transport.request(url, { method: options.method, headers, timeout: this.timeoutMs });
      options.signal?.addEventListener('abort', onAbort, { once: true });
      req.on('timeout', () => finish(Object.assign(new Error(`no answer within ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', (error) => finish(error));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => finish(error));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text === '' ? undefined : JSON.parse(text);
          } catch {
            body = undefined;
          }
          // A refusal that arrives before the body is written (e.g. 413 on Content-Length) ends the upload.
          if (res.statusCode! >= 300 && written > 0) options.onBytes?.(-written);
          written = 0;
          finish(null, { status: res.statusCode!, headers: res.headers, body, text });
        });
      });
      const write = async () => {
        if (bytes) {
          req.end(bytes);
          written = bytes.length;
          options.onBytes?.(bytes.length);
          return;
        }
        if (!stream) return void req.end();
        for await (const chunk of stream()) {
          if (settled) return;
          written += chunk.length;
          options.onBytes?.(chunk.length);
          if (!req.write(chunk)) await drainedOrClosed(req);
        }
        if (!settled) req.end();
      };
      write().catch((error) => finish(error as Error));
    });
  }
}

/** Waits for `drain` (or `close`), leaving no listener behind: a long upload waits many times. */
function drainedOrClosed(req: http.ClientRequest): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      req.off('drain', done);
      req.off('close', done);
      resolve();
    };
    req.once('drain', done);
    req.once('close', done);
  });
}
