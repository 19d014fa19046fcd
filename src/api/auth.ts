import type { Context, Next } from 'koa';
import type { Knex } from 'knex';
import { findPrincipalByKey } from '../storage/repositories/apiKeys.js';
import type { Principal, Role } from '../storage/repositories/principal.js';
import { ApiError } from './errors.js';

export type { Principal, Role };

const BEARER = /^Bearer\s+(\S{1,512})\s*$/i;

/** The bearer token in an Authorization header, null when absent; a malformed header is a 401. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined || header === '') return null;
  const match = BEARER.exec(header);
  if (!match) throw unauthorized('the Authorization header must be "Bearer <key>"');
  return match[1];
}

export function unauthorized(message = 'a valid API key is required (Authorization: Bearer <key>)'): ApiError {
  return new ApiError(401, 'unauthorized', message, undefined, { 'WWW-Authenticate': 'Bearer realm="FacePerks"' });
}

/**
 * Resolves the caller's key (if any) into `ctx.state.principal`. A malformed header or an unknown or
 * revoked key is kept as `ctx.state.authFailure` for `authorize` to answer: public routes (health,
 * readiness, metrics, the OpenAPI document) answer a probe that still sends a stale key.
 */
export function authenticate(db: Knex) {
  return async (ctx: Context, next: Next) => {
    let token: string | null;
    try {
      token = bearerToken(ctx.get('authorization') || undefined);
    } catch (error) {
      ctx.state.authFailure = error;
      return next();
    }
    if (token !== null) {
      const principal = await findPrincipalByKey(db, token);
      if (principal) {
        ctx.state.principal = principal;
        ctx.state.log = ctx.state.log?.child({ keyId: principal.keyId, role: principal.role });
      } else ctx.state.authFailure = unauthorized('unknown or revoked API key');
    }
    return next();
  };
}

const withArticle = (role: Role) => `${role === 'admin' ? 'an' : 'a'} ${role}`;

/** The caller, if it holds one of `roles`: no key, or a bad one → 401, another role → 403. */
export function authorize<R extends Role>(ctx: Context, ...roles: R[]): Extract<Principal, { role: R }> {
  const principal = ctx.state.principal as Principal | undefined;
  if (!principal) throw (ctx.state.authFailure as ApiError | undefined) ?? unauthorized();
  if (!(roles as Role[]).includes(principal.role)) {
    throw new ApiError(403, 'forbidden', `this endpoint needs ${roles.map(withArticle).join(' or ')} key; this is ${withArticle(principal.role)} key`);
  }
  return principal as Extract<Principal, { role: R }>;
}

/**
 * The merchant an admin-or-merchant request acts for: a merchant key implies its own merchant
 * (another merchant's id is reported as not found); an admin must name one.
 */
export function actingMerchant(principal: Extract<Principal, { role: 'admin' | 'merchant' }>, requested: string | undefined): string {
  if (principal.role === 'merchant') {
    if (requested !== undefined && requested !== principal.merchantId) throw new ApiError(404, 'not_found', 'merchant not found');
    return principal.merchantId;
  }
  if (requested === undefined) throw new ApiError(400, 'validation_error', 'invalid body: merchantId: required with an admin key');
  return requested;
}
