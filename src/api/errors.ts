import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { z } from 'zod';
import { BlobStoreFault } from '../storage/blobs.js';

/** An error with an HTTP status and a stable machine code; rendered as `{error: {code, message}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const notFound = (what: string) => new ApiError(404, 'not_found', `${what} not found`);

/** Seconds a client should wait before sending again when the blob store is full or unavailable. */
const STORAGE_RETRY_AFTER = { full: 60, unavailable: 10 } as const;

/**
 * A fault of the blob store is the server's, never the upload's: 507 when it is full, 503
 * otherwise, both with Retry-After so a robot keeps its photo and sends it again later.
 */
export function storageError(fault: BlobStoreFault): ApiError {
  const headers = { 'Retry-After': String(STORAGE_RETRY_AFTER[fault.kind]) };
  return fault.kind === 'full'
    ? new ApiError(507, 'insufficient_storage', 'the server has no room to store uploads right now; send them again later', undefined, headers)
    : new ApiError(503, 'storage_unavailable', 'image storage is unavailable right now; send the upload again later', undefined, headers);
}

const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  409: 'conflict',
  411: 'length_required',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'unprocessable',
  429: 'too_many_requests',
  501: 'not_implemented',
  503: 'unavailable',
};

/** One readable line per zod issue: `name: Too big: expected string to have <=200 characters`. */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
}

export type ErrorBody = { error: { code: string; message: string } & Record<string, unknown> };

export function errorBody(code: string, message: string, extra?: Record<string, unknown>): ErrorBody {
  return { error: { code, message, ...extra } };
}

/** Maps anything thrown below to the error schema; 5xx are logged with their stack and kept vague. */
export function errorMapper(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new ApiError(404, 'not_found', `no route for ${ctx.method} ${ctx.path}`);
      }
    } catch (thrown) {
      const { status, body, headers } = toResponse(thrown);
      if (status >= 500) {
        (ctx.state.log as Logger | undefined ?? logger).error({ err: thrown }, 'request failed');
      }
      ctx.status = status;
      // An unexpected failure says nothing of its cause; the request id finds it in the logs.
      ctx.body = body.error.code === 'internal_error' && ctx.state.requestId ? errorBody('internal_error', 'internal error', { requestId: ctx.state.requestId }) : body;
      for (const [name, value] of Object.entries(headers ?? {})) ctx.set(name, value);
    }
  };
}

function toResponse(thrown: unknown): { status: number; body: ErrorBody; headers?: Record<string, string> } {
  if (thrown instanceof ApiError) {
    return { status: thrown.status, body: errorBody(thrown.code, thrown.message, thrown.extra), headers: thrown.headers };
  }
  if (thrown instanceof BlobStoreFault) return toResponse(storageError(thrown));
  if (thrown instanceof z.ZodError) {
    return { status: 400, body: errorBody('validation_error', describeZodError(thrown)) };
  }
  // http-errors thrown by koa, the router (405) and the body parser (400, 413, 415).
  const e = thrown as { status?: unknown; statusCode?: unknown; expose?: boolean; message?: string; type?: string; headers?: Record<string, string> };
  const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    let code = CODE_BY_STATUS[status] ?? 'bad_request';
    if (e.type === 'entity.parse.failed') code = 'invalid_json';
    const message = e.expose && e.message ? e.message : code.replace(/_/g, ' ');
    return { status, body: errorBody(code, message), headers: e.headers };
  }
  if (status === 503) return { status, body: errorBody('unavailable', 'a backing service is unavailable, retry later') };
  return { status: 500, body: errorBody('internal_error', 'internal error') };
}
