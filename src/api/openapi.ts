/**
 * The OpenAPI 3.1 description of the API, hand-written to match the routes. Served at
 * GET /v1/openapi.json (public). Keep it in step with src/api/routes/*.
 */

import { AUDIT_ACTIONS } from '../../models/AuditEntry.js';

type Schema = Record<string, unknown>;
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Schema) => ({ 'application/json': { schema } });
const uuid: Schema = { type: 'string', format: 'uuid' };
const instant: Schema = { type: 'string', format: 'date-time' };
const nullable = (schema: Schema): Schema => ({ oneOf: [schema, { type: 'null' }] });

const ERROR_TEXT: Record<string, string> = {
  '400': 'Invalid request (body, query, path or multipart form); `error.message` names the field',
  '401': 'Missing, malformed, unknown or revoked API key',
  '403': 'The key is valid but of a role this endpoint does not serve',
  '404': "Not found, or another tenant's resource",
  '409': 'Conflict with an existing resource',
  '413': 'Too large: file, request, file count or image pixels',
  '415': 'Not multipart, or not an image',
  '422': 'The image cannot be used (empty, truncated, no face, several faces)',
  '503': 'A backing service or worker is unavailable, or timed out; retry later',
};
const errors = (...codes: string[]) =>
  Object.fromEntries(codes.map((c) => [c, { description: ERROR_TEXT[c], content: json(ref('Error')) }]));

const idParam = (what: string) => ({ name: 'id', in: 'path', required: true, description: `${what} id`, schema: uuid });
const bearer = [{ bearerKey: [] }];

const ROLES = ['admin', 'merchant', 'device'] as const;

/**
 * `roles`: "public", or the roles that may call it, each with how far its reach goes, e.g.
 * "admin, merchant (own)". `x-roles` lists them for machines (the tenancy matrix test).
 */
function op(summary: string, roles: string, extra: Schema, ...errorCodes: string[]): Schema {
  const allowed = roles === 'public' ? [] : roles.split(',').map((part) => part.trim().split(' ')[0]);
  const unknown = allowed.filter((role) => !(ROLES as readonly string[]).includes(role));
  if (unknown.length > 0) throw new Error(`openapi: unknown role ${unknown.join(', ')} in "${roles}"`);
  return {
    summary,
    description: `Roles: ${roles}.`,
    'x-roles': allowed,
    security: roles === 'public' ? [] : bearer,
    ...extra,
    responses: { ...(extra.responses as Schema), ...errors(...(roles === 'public' ? [] : ['401']), ...errorCodes) },
  };
}
const body = (schema: Schema) => ({ requestBody: { required: true, content: json(schema) } });
const optionalBody = (schema: Schema) => ({ requestBody: { required: false, content: json(schema) } });
const ok = (status: string, description: string, schema?: Schema, headers?: Schema) => ({
  responses: { [status]: { description, ...(schema ? { content: json(schema) } : {}), ...(headers ? { headers } : {}) } },
});
const multipartImage = {
  requestBody: {
    required: true,
    content: {
      'multipart/form-data': {
        schema: { type: 'object', required: ['image'], properties: { image: { type: 'string', format: 'binary' } } },
      },
    },
  },
};
const rangeParams = [
  { name: 'from', in: 'query', schema: { type: 'string' }, description: 'Inclusive ISO-8601 instant (or YYYY-MM-DD, local midnight), floored to its bucket' },
  { name: 'to', in: 'query', schema: { type: 'string' }, description: 'Exclusive ISO-8601 instant (or YYYY-MM-DD)' },
  { name: 'interval', in: 'query', schema: { enum: ['hour', 'day'], default: 'hour' }, description: "Buckets in the store's time zone" },
  { name: 'format', in: 'query', schema: { enum: ['json', 'csv'], default: 'json' } },
];
const pageParams = [
  { name: 'cursor', in: 'query', schema: { type: 'string' }, description: 'nextCursor of the previous page (opaque); absent for the first page' },
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
];
/** A list answer: one page of `item` and the cursor of the next page (null on the last). */
const listOf = (item: Schema): Schema => ({
  type: 'object',
  required: ['items', 'nextCursor'],
  properties: { items: { type: 'array', items: item }, nextCursor: nullable({ type: 'string' }) },
});
const merchantIdParam = { name: 'merchantId', in: 'query', schema: uuid, description: 'Required with an admin key; a merchant key implies its own' };
const analyticsOp = (summary: string) =>
  op(summary, 'admin, merchant (own stores)', { parameters: [idParam('Store'), ...rangeParams], ...ok('200', summary, { type: 'object' }) }, '400', '403', '404');

const schemas: Record<string, Schema> = {
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', examples: ['validation_error', 'not_found', 'unsupported_format'] },
          message: { type: 'string' },
          rejected: { type: 'array', items: ref('RejectedFile'), description: 'POST /v1/captures when every file was refused' },
        },
      },
    },
  },
  Merchant: { type: 'object', properties: { id: uuid, name: { type: 'string' }, createdAt: instant } },
  NewKey: {
    type: 'object',
    description: 'The key is shown once; only its sha256 is stored.',
    properties: { id: uuid, key: { type: 'string', examples: ['fpk_…'] }, role: { enum: ['admin', 'merchant', 'device'] }, merchantId: uuid, deviceId: uuid },
  },
  NewKeyRequest: {
    type: 'object',
    description: 'Optional: a label to tell keys apart, and an expiry after which the key is refused like a revoked one.',
    additionalProperties: false,
    properties: { label: { type: 'string', maxLength: 100 }, expiresAt: { type: 'string', format: 'date-time' } },
  },
  KeyInfo: {
    type: 'object',
    description: 'A key without its secret. lastUsedAt is updated at most once a minute.',
    properties: {
      id: uuid,
      role: { enum: ['admin', 'merchant', 'device'] },
      merchantId: nullable(uuid),
      deviceId: nullable(uuid),
      label: nullable({ type: 'string' }),
      createdAt: instant,
      expiresAt: nullable(instant),
      lastUsedAt: nullable(instant),
      revokedAt: nullable(instant),
    },
  },
  Store: { type: 'object', properties: { id: uuid, merchantId: uuid, name: { type: 'string' }, timezone: { type: 'string' }, createdAt: instant } },
  Device: { type: 'object', properties: { id: uuid, storeId: uuid, name: { type: 'string' }, createdAt: instant } },
  Person: {
    type: 'object',
    properties: {
      id: uuid,
      merchantId: uuid,
      externalId: nullable({ type: 'string' }),
      displayName: { type: 'string' },
      points: { type: 'integer' },
      faces: { type: 'array', items: { type: 'object', properties: { id: uuid, pack: { type: 'string' }, createdAt: instant } } },
      lastSeenAt: nullable(instant),
      createdAt: instant,
    },
  },
  Visit: {
    type: 'object',
    description: 'A run of sightings of one subject at one store with gaps under VISIT_GAP_MINUTES',
    properties: { storeId: uuid, startedAt: instant, endedAt: instant, sightings: { type: 'integer' } },
  },
  LedgerEntry: {
    type: 'object',
    description: 'An award (recognised at a store, for a capture), a redemption, or a reversal (the award of a face rejected as not this member, at most the balance then); points is the change to the balance',
    properties: {
      id: uuid,
      kind: { enum: ['award', 'redemption', 'reversal'] },
      points: { type: 'integer', description: 'Positive for an award, negative for a redemption or a reversal' },
      at: { ...instant, description: "An award's capture time, a redemption's or a reversal's time" },
      storeId: nullable(uuid),
      captureId: nullable(uuid),
      reason: nullable({ type: 'string' }),
    },
  },
  Redemption: {
    type: 'object',
    properties: {
      id: uuid,
      personId: uuid,
      points: { type: 'integer' },
      reason: { type: 'string' },
      idempotencyKey: { type: 'string' },
      balance: { type: 'integer', description: 'The balance right after this redemption' },
      redeemedAt: instant,
    },
  },
  VisitorSummary: {
    type: 'object',
    description: 'An anonymous returning visitor of the merchant',
    properties: {
      id: uuid,
      visits: { type: 'integer', description: 'Its visits (at storeId when the list is filtered by store)' },
      firstSeenAt: instant,
      lastSeenAt: instant,
      storeIds: { type: 'array', items: uuid, description: 'Every store it visited' },
    },
  },
  AuditEntry: {
    type: 'object',
    description: "One change to a member's identity or points. Details hold ids and field names only, never a name or external id; an erased member's entries stay",
    properties: {
      id: { type: 'integer' },
      at: instant,
      merchantId: uuid,
      actor: { type: 'object', properties: { keyId: uuid, role: { enum: ['admin', 'merchant'] } } },
      action: { enum: [...AUDIT_ACTIONS] },
      subject: { type: 'object', properties: { kind: { enum: ['member', 'visitor'] }, id: uuid } },
      details: {
        type: 'object',
        examples: [{ fields: ['displayName'] }, { faceId: '…' }, { redemptionId: '…', points: 10 }],
      },
    },
  },
  CaptureStatus: { enum: ['queued', 'processing', 'done', 'failed'] },
  ErrorDetail: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
  AcceptedCapture: {
    type: 'object',
    required: ['id', 'sha256', 'status'],
    properties: {
      id: uuid,
      sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
      status: ref('CaptureStatus'),
      duplicate: { type: 'boolean', description: 'This device had already sent the file: the existing capture, as it stands, not processed again' },
      error: ref('ErrorDetail'),
      index: { type: 'integer', description: 'Position of the file among the image parts, from 0' },
      filename: nullable({ type: 'string' }),
    },
  },
  RejectedFile: {
    type: 'object',
    properties: {
      index: { type: 'integer' },
      filename: nullable({ type: 'string' }),
      status: { type: 'integer', enum: [413, 415, 422], description: 'The status this file alone would have had' },
      error: ref('ErrorDetail'),
    },
  },
  UploadResult: {
    type: 'object',
    required: ['batchId', 'captures', 'rejected'],
    properties: {
      batchId: uuid,
      captures: { type: 'array', items: ref('AcceptedCapture') },
      rejected: { type: 'array', items: ref('RejectedFile') },
    },
  },
  Batch: {
    type: 'object',
    properties: {
      id: uuid,
      status: { enum: ['processing', 'done'], description: 'done when every capture is done or failed' },
      total: { type: 'integer' },
      queued: { type: 'integer' },
      processing: { type: 'integer' },
      done: { type: 'integer' },
      failed: { type: 'integer' },
      storeId: uuid,
      deviceId: uuid,
      createdAt: instant,
      captures: {
        type: 'array',
        items: { type: 'object', properties: { id: uuid, status: ref('CaptureStatus'), sha256: { type: 'string' }, error: ref('ErrorDetail') } },
      },
    },
  },
  Box: { type: 'object', properties: { x: { type: 'number' }, y: { type: 'number' }, width: { type: 'number' }, height: { type: 'number' } } },
  Landmarks: {
    type: 'array',
    description: 'Five points: left eye, right eye, nose, left and right mouth corners',
    items: { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 },
    minItems: 5,
    maxItems: 5,
  },
  Face: {
    type: 'object',
    properties: {
      id: uuid,
      index: { type: 'integer' },
      box: ref('Box'),
      score: { type: 'number' },
      landmarks: ref('Landmarks'),
      age: nullable({ type: 'number' }),
      gender: nullable({ enum: ['male', 'female'] }),
      match: nullable({
        type: 'object',
        properties: { kind: { enum: ['member', 'visitor'] }, personId: nullable(uuid), visitorId: nullable(uuid), similarity: { type: 'number' } },
      }),
    },
  },
  Capture: {
    type: 'object',
    description: "Box and landmarks are in the original image's pixels, after EXIF orientation.",
    properties: {
      id: uuid,
      status: ref('CaptureStatus'),
      stage: { type: 'string' },
      error: ref('ErrorDetail'),
      batchId: uuid,
      storeId: uuid,
      deviceId: uuid,
      sha256: { type: 'string' },
      bytes: { type: 'integer' },
      format: nullable({ type: 'string' }),
      width: nullable({ type: 'integer' }),
      height: nullable({ type: 'integer' }),
      capturedAt: instant,
      capturedAtSource: { enum: ['device', 'exif', 'receipt'] },
      receivedAt: instant,
      faces: { type: 'array', items: ref('Face') },
    },
  },
  IdentifyResult: {
    type: 'object',
    properties: {
      faces: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            box: ref('Box'),
            score: { type: 'number' },
            landmarks: ref('Landmarks'),
            age: { type: 'number' },
            gender: { enum: ['male', 'female'] },
            matches: {
              type: 'array',
              items: {
                type: 'object',
                properties: { personId: uuid, externalId: nullable({ type: 'string' }), displayName: { type: 'string' }, similarity: { type: 'number' } },
              },
            },
          },
        },
      },
    },
  },
};

const name200 = { type: 'string', minLength: 1, maxLength: 200 };

export function openApiDocument(): Schema {
  return {
    openapi: '3.1.0',
    info: {
      title: 'FacePerks API',
      version: '1.0.0',
      description:
        'Intake and management API of the FacePerks face-recognition pipeline. Authenticate with `Authorization: Bearer <key>`. ' +
        "Roles: admin, merchant (its own stores, devices, members, analytics), device (uploads; reads its own batches and captures). Another tenant's resource answers 404. " +
        'Every error is `{"error": {"code", "message"}}`.',
    },
    components: {
      securitySchemes: {
        bearerKey: { type: 'http', scheme: 'bearer', description: 'An API key (fpk_…)' },
        basicAdmin: { type: 'http', scheme: 'basic', description: 'Bull Board: any user name, the admin key as password' },
      },
      schemas,
    },
    paths: {
      '/v1/merchants': {
        post: op('Create a merchant', 'admin', { ...body({ type: 'object', required: ['name'], properties: { name: name200 } }), ...ok('201', 'Created', ref('Merchant')) }, '400', '403'),
      },
      '/v1/merchants/{id}': {
        get: op('Read a merchant', 'admin, merchant (own)', { parameters: [idParam('Merchant')], ...ok('200', 'The merchant', ref('Merchant')) }, '400', '403', '404'),
      },
      '/v1/merchants/{id}/keys': {
        post: op('Create a merchant key (shown once)', 'admin', { parameters: [idParam('Merchant')], ...optionalBody(ref('NewKeyRequest')), ...ok('201', 'The new key', ref('NewKey')) }, '400', '403', '404'),
      },
      '/v1/merchants/{id}/webhook': {
        put: op(
          'Set the merchant\'s recognition webhook; answers a new signing secret, shown once. Each member recognition is POSTed as JSON with X-FacePerks-Timestamp (unix seconds), X-FacePerks-Delivery (the same on retries) and X-FacePerks-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">. A URL whose host is or resolves to a loopback, private, link-local, multicast or other special address answers 422 webhook_target_refused (unless the operator allows its range)',
          'admin, merchant (own)',
          {
            parameters: [idParam('Merchant')],
            ...body({ type: 'object', required: ['url'], additionalProperties: false, properties: { url: { type: 'string', format: 'uri' } } }),
            responses: {
              ...ok('200', 'The webhook and its secret', {
                type: 'object',
                properties: { url: { type: 'string' }, secret: { type: 'string' }, events: { type: 'array', items: { type: 'string' } } },
              }).responses,
              '422': { description: 'webhook_target_refused: the URL points inside the deployment, or its host does not resolve', content: json(ref('Error')) },
            },
          },
          '400', '403', '404',
        ),
        get: op(
          'Read the webhook (without its secret) and how its deliveries are going: after 3 failures in a row the endpoint is paused (30 s, doubling up to 1 h) and its events wait',
          'admin, merchant (own)',
          {
            parameters: [idParam('Merchant')],
            ...ok('200', 'The webhook', {
              type: 'object',
              properties: {
                url: { type: 'string' },
                events: { type: 'array', items: { type: 'string' } },
                delivery: {
                  type: 'object',
                  properties: {
                    consecutiveFailures: { type: 'integer' },
                    lastError: nullable({ type: 'string' }),
                    lastErrorAt: nullable(instant),
                    pausedUntil: { ...nullable(instant), description: 'Set while the endpoint is paused' },
                  },
                },
              },
            }),
          },
          '400', '403', '404',
        ),
        delete: op('Remove the webhook', 'admin, merchant (own)', { parameters: [idParam('Merchant')], ...ok('204', 'Removed') }, '400', '403', '404'),
      },
      '/v1/admin-keys': {
        post: op(
          'Create another admin key (shown once): rotate without a restart by switching to it and revoking the old one. With FACEPERKS_ADMIN_KEY set, a restart makes that key the only admin key again',
          'admin',
          { ...optionalBody(ref('NewKeyRequest')), ...ok('201', 'The new key', ref('NewKey')) },
          '400', '403',
        ),
      },
      '/v1/keys': {
        get: op(
          'List keys without their secrets, newest first: admin every key (or one merchant\'s with merchantId), a merchant its own and its devices\' keys',
          'admin, merchant (own)',
          {
            parameters: [
              { name: 'merchantId', in: 'query', schema: uuid },
              { name: 'cursor', in: 'query', schema: uuid, description: 'nextCursor of the previous page' },
              { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
            ],
            ...ok('200', 'A page of keys', { type: 'object', properties: { items: { type: 'array', items: ref('KeyInfo') }, nextCursor: nullable(uuid) } }),
          },
          '400', '403', '404',
        ),
      },
      '/v1/keys/{id}': {
        delete: op('Revoke a key', 'admin, merchant (its own merchant and device keys)', { parameters: [idParam('Key')], ...ok('204', 'Revoked') }, '400', '403', '404'),
      },
      '/v1/stores': {
        post: op(
          'Create a store',
          'admin, merchant (merchantId implied)',
          {
            ...body({ type: 'object', required: ['name', 'timezone'], properties: { merchantId: uuid, name: name200, timezone: { type: 'string', description: 'IANA zone, e.g. Europe/Paris' } } }),
            ...ok('201', 'Created', ref('Store')),
          },
          '400', '403', '404',
        ),
        get: op(
          'List stores',
          'admin (with merchantId), merchant',
          { parameters: [{ name: 'merchantId', in: 'query', schema: uuid }], ...ok('200', 'Stores', { type: 'object', properties: { stores: { type: 'array', items: ref('Store') } } }) },
          '400', '403', '404',
        ),
      },
      '/v1/stores/{id}': {
        get: op('Read a store', 'admin, merchant (own), device (its store)', { parameters: [idParam('Store')], ...ok('200', 'The store', ref('Store')) }, '400', '404'),
      },
      '/v1/stores/{id}/devices': {
        post: op(
          'Create a device and its key (shown once)',
          'admin, merchant (own store)',
          {
            parameters: [idParam('Store')],
            ...body({ type: 'object', required: ['name'], properties: { name: name200 } }),
            ...ok('201', 'The device and its key', { allOf: [ref('Device'), { type: 'object', properties: { key: { type: 'string' }, keyId: uuid } }] }),
          },
          '400', '403', '404',
        ),
        get: op('List devices of a store', 'admin, merchant (own store)', { parameters: [idParam('Store')], ...ok('200', 'Devices', { type: 'object', properties: { devices: { type: 'array', items: ref('Device') } } }) }, '400', '403', '404'),
      },
      '/v1/devices/{id}': {
        delete: op('Remove a device: its keys stop working at once; its captures and analytics stay', 'admin, merchant (own device)', { parameters: [idParam('Device')], ...ok('204', 'Removed') }, '400', '403', '404'),
      },
      '/v1/devices/{id}/keys': {
        post: op(
          'Create another key for a device (rotation)',
          'admin, merchant (own device)',
          { parameters: [idParam('Device')], ...optionalBody(ref('NewKeyRequest')), ...ok('201', 'The new key', ref('NewKey')) },
          '400', '403', '404',
        ),
      },
      '/v1/people': {
        post: op(
          'Create a member',
          'admin, merchant (merchantId implied)',
          {
            ...body({ type: 'object', required: ['displayName'], properties: { merchantId: uuid, externalId: nullable(name200), displayName: name200 } }),
            ...ok('201', 'Created', ref('Person')),
          },
          '400', '403', '404', '409',
        ),
        get: op(
          "List a merchant's members: most recently seen first (never seen last) or most points first; ties by id",
          'admin (with merchantId), merchant',
          {
            parameters: [
              merchantIdParam,
              { name: 'q', in: 'query', schema: name200, description: 'Part of the display name, any case' },
              { name: 'externalId', in: 'query', schema: name200, description: 'Exactly this external id' },
              { name: 'sort', in: 'query', schema: { enum: ['lastSeen', 'points'], default: 'lastSeen' } },
              ...pageParams,
            ],
            ...ok('200', 'A page of members', listOf(ref('Person'))),
          },
          '400', '403', '404',
        ),
      },
      '/v1/people/{id}': {
        get: op('Read a member (points, enrolled faces, last seen)', 'admin, merchant (own)', { parameters: [idParam('Person')], ...ok('200', 'The member', ref('Person')) }, '400', '403', '404'),
        patch: op(
          'Rename a member or change its external id (null clears it)',
          'admin, merchant (own)',
          {
            parameters: [idParam('Person')],
            ...body({
              type: 'object',
              minProperties: 1,
              additionalProperties: false,
              properties: { displayName: name200, externalId: nullable(name200) },
            }),
            ...ok('200', 'The member as changed', ref('Person')),
          },
          '400', '403', '404', '409',
        ),
        delete: op(
          'Erase a member: gallery vectors, enrolled faces and images; sightings are unlinked (anonymous counts stay)',
          'admin, merchant (own)',
          { parameters: [idParam('Person')], ...ok('204', 'Erased') },
          '400', '403', '404', '503',
        ),
      },
      '/v1/people/{id}/faces': {
        post: op(
          'Enrol a face (synchronous, through a worker, ~30 s timeout)',
          'admin, merchant (own)',
          {
            parameters: [idParam('Person')],
            ...multipartImage,
            responses: {
              '201': { description: 'Enrolled', content: json({ type: 'object', properties: { faceId: uuid, personId: uuid, face: { type: 'object' } } }) },
              '200': { description: 'This image was already enrolled for this member', content: json({ type: 'object', properties: { faceId: uuid, personId: uuid, duplicate: { const: true } } }) },
            },
          },
          '400', '403', '404', '413', '415', '422', '429', '503',
        ),
      },
      '/v1/people/{id}/faces/{faceId}': {
        delete: op(
          "Remove one enrolled face: its vectors in every pack's member gallery, its row and its image (the last face may go too)",
          'admin, merchant (own)',
          { parameters: [idParam('Person'), { name: 'faceId', in: 'path', required: true, description: 'Enrolled face id', schema: uuid }], ...ok('204', 'Removed') },
          '400', '403', '404', '503',
        ),
      },
      '/v1/people/{id}/visits': {
        get: op(
          "A member's visits at the merchant's stores, latest first",
          'admin, merchant (own)',
          { parameters: [idParam('Person'), ...pageParams], ...ok('200', 'A page of visits', listOf(ref('Visit'))) },
          '400', '403', '404',
        ),
      },
      '/v1/people/{id}/points': {
        get: op(
          "A member's balance and points history: awards and redemptions, latest first",
          'admin, merchant (own)',
          {
            parameters: [idParam('Person'), ...pageParams],
            ...ok('200', 'The balance and a page of the history', {
              type: 'object',
              required: ['balance', 'items', 'nextCursor'],
              properties: { balance: { type: 'integer' }, items: { type: 'array', items: ref('LedgerEntry') }, nextCursor: nullable({ type: 'string' }) },
            }),
          },
          '400', '403', '404',
        ),
      },
      '/v1/people/{id}/redemptions': {
        post: op(
          "Spend a member's points. The balance never goes below zero; a request sent again with the same idempotencyKey is answered with the first redemption (200) and redeems nothing",
          'admin, merchant (own)',
          {
            parameters: [idParam('Person')],
            ...body({
              type: 'object',
              required: ['points', 'reason', 'idempotencyKey'],
              additionalProperties: false,
              properties: {
                points: { type: 'integer', minimum: 1, maximum: 1_000_000 },
                reason: name200,
                idempotencyKey: { type: 'string', minLength: 1, maxLength: 100 },
              },
            }),
            responses: {
              '201': { description: 'Redeemed', content: json(ref('Redemption')) },
              '200': { description: 'This idempotencyKey was redeemed before: that redemption', content: json(ref('Redemption')) },
              '409': { description: 'idempotency_key_reused: the key was used for a different redemption (points or reason)', content: json(ref('Error')) },
              '422': { description: 'insufficient_points: the balance (error.balance) is below points', content: json(ref('Error')) },
            },
          },
          '400', '403', '404',
        ),
      },
      '/v1/people/{id}/visitors': {
        post: op(
          "Link a visitor to the member (\"this returning visitor just signed up\"): its sightings, visits and vectors become the member's, analytics are recomputed (totals unchanged, the member/visitor split moves); perks for its past only with awardPast, each under the cooldown. Undo with POST /v1/audit/{auditId}/undo. Sent again after a 503, finishes the link",
          'admin, merchant (own)',
          {
            parameters: [idParam('Person')],
            ...body({
              type: 'object',
              required: ['visitorId'],
              additionalProperties: false,
              properties: { visitorId: uuid, awardPast: { type: 'boolean', default: false } },
            }),
            ...ok('200', 'Linked', {
              type: 'object',
              required: ['person', 'sightingsMoved', 'pointsAwarded', 'auditId'],
              properties: { person: ref('Person'), sightingsMoved: { type: 'integer' }, pointsAwarded: { type: 'integer' }, auditId: { type: 'integer' } },
            }),
          },
          '400', '403', '404', '503',
        ),
      },
      '/v1/visitors': {
        get: op(
          "List a merchant's anonymous visitors: most recently seen or most visits first; ties by id",
          'admin (with merchantId), merchant',
          {
            parameters: [
              merchantIdParam,
              { name: 'storeId', in: 'query', schema: uuid, description: 'Only visitors of this store, with their visits there' },
              { name: 'sort', in: 'query', schema: { enum: ['lastSeen', 'visits'], default: 'lastSeen' } },
              ...pageParams,
            ],
            ...ok('200', 'A page of visitors', listOf(ref('VisitorSummary'))),
          },
          '400', '403', '404',
        ),
      },
      '/v1/visitors/{id}': {
        get: op(
          'Read a visitor and its visits, latest first (cursor and limit page the history). A visitor merged or linked away answers 404 with error.movedTo: {kind, id}, the subject it became part of',
          'admin, merchant (own)',
          {
            parameters: [idParam('Visitor'), ...pageParams],
            ...ok('200', 'The visitor and a page of its visits', {
              allOf: [ref('VisitorSummary'), { type: 'object', properties: { merchantId: uuid, history: listOf(ref('Visit')) } }],
            }),
          },
          '400', '403', '404',
        ),
      },
      '/v1/visitors/{id}/merge': {
        post: op(
          'Merge this visitor into another of the merchant (one person seen as two): sightings, visits (re-sessionised), rollups and vectors go to `into`; this id answers 404 with error.movedTo after. Undo with POST /v1/audit/{auditId}/undo. Sent again after a 503, finishes the merge',
          'admin, merchant (own)',
          {
            parameters: [idParam('Visitor')],
            ...body({ type: 'object', required: ['into'], additionalProperties: false, properties: { into: uuid } }),
            responses: {
              '200': {
                description: 'Merged: the surviving visitor',
                content: json({
                  type: 'object',
                  required: ['visitor', 'auditId'],
                  properties: { visitor: { allOf: [ref('VisitorSummary'), { type: 'object', properties: { merchantId: uuid } }] }, auditId: { type: 'integer' } },
                }),
              },
              '422': { description: 'same_visitor: into is this visitor', content: json(ref('Error')) },
            },
          },
          '400', '403', '404', '503',
        ),
      },
      '/v1/faces/{id}/reject': {
        post: op(
          '"Not this person": the recognised face (a capture face id) is not the member or visitor it was matched to. It becomes a visitor (the closest other visitor, else a new one), analytics follow, a perk awarded for it is reversed in the ledger, and that subject is not matched again to a later face closer to this one than to its own faces',
          'admin, merchant (own)',
          {
            parameters: [idParam('Face (of a capture)')],
            responses: {
              '200': {
                description: 'Rejected: the subject the face now belongs to',
                content: json({
                  type: 'object',
                  required: ['faceId', 'subject', 'auditId'],
                  properties: { faceId: uuid, subject: { type: 'object', properties: { kind: { enum: ['member', 'visitor'] }, id: uuid } }, auditId: { type: 'integer' } },
                }),
              },
              '409': { description: 'face_moved: the face or its closest visitor changed meanwhile; read it and send again', content: json(ref('Error')) },
              '422': { description: 'not_matched: the face has no match; no_embedding: matched before faces kept their embedding (reprocess the capture)', content: json(ref('Error')) },
            },
          },
          '400', '403', '404', '503',
        ),
      },
      '/v1/audit': {
        get: op(
          "Audit trail of identity changes (members created, updated, erased; faces enrolled, removed, rejected; visitors merged and linked; undos) and redemptions, newest first: a merchant's own entries; every merchant's for an admin, or one merchant's with merchantId",
          'admin, merchant (own)',
          {
            parameters: [{ name: 'merchantId', in: 'query', schema: uuid, description: 'Admin: only this merchant; merchant: its own id or omitted' }, ...pageParams],
            ...ok('200', 'A page of entries', listOf(ref('AuditEntry'))),
          },
          '400', '403', '404',
        ),
      },
      '/v1/audit/{id}/undo': {
        post: op(
          'Undo a merge or a link (the audit entry that recorded it): sightings, visits, analytics, vectors and perks awarded for the past go back exactly as they were',
          'admin, merchant (own)',
          {
            parameters: [{ name: 'id', in: 'path', required: true, description: 'Audit entry id', schema: { type: 'integer', minimum: 1 } }],
            responses: {
              '200': {
                description: 'Undone',
                content: json({ type: 'object', required: ['undone', 'auditId'], properties: { undone: { type: 'integer' }, auditId: { type: 'integer', description: "The undo's own entry" } } }),
              },
              '409': { description: 'undo_stale: the subjects changed after (a later merge, link or rejection, a face gone, a subject erased, the points spent); already_undone', content: json(ref('Error')) },
              '422': { description: 'not_undoable: the entry is not a merge or a link (a rejection is not undone; a later match of the face fixes it)', content: json(ref('Error')) },
            },
          },
          '400', '403', '404', '503',
        ),
      },
      '/v1/captures': {
        post: op(
          'Upload captures (bulk)',
          'device',
          {
            description:
              'Roles: device. Multipart: optional `capturedAt` fields (ISO-8601 with a zone) before one or more `images` parts; one capturedAt applies to all images, several pair with the images in order. ' +
              'Without one, EXIF DateTimeOriginal (read in the store time zone when it has no offset), else the receipt time. The bytes decide the format, not the declared type. ' +
              'A file this device already sent answers its existing capture (duplicate: true) and is not processed again. ' +
              'A bad file does not sink the batch: it is listed in `rejected` with the status it would have had (413 too_large, 415 unsupported_format, 422 empty/truncated). ' +
              'If every file is refused, the answer is that status with the list in `error.rejected`. Request-level limits (file count, total size) answer 413 and record nothing.',
            requestBody: {
              required: true,
              content: {
                'multipart/form-data': {
                  schema: {
                    type: 'object',
                    required: ['images'],
                    properties: {
                      capturedAt: { type: 'array', items: instant },
                      images: { type: 'array', items: { type: 'string', format: 'binary' } },
                    },
                  },
                  encoding: { images: { contentType: 'image/*' } },
                },
              },
            },
            ...ok('202', 'Accepted; follow the batch', ref('UploadResult'), { Location: { schema: { type: 'string' }, description: '/v1/batches/{batchId}' } }),
          },
          '400', '403', '413', '415', '422',
        ),
      },
      '/v1/captures/lookup': {
        post: op(
          'Which of these files (by sha256) this device has already sent, so a resumed upload skips them without re-sending bytes',
          'device',
          {
            ...body({
              type: 'object',
              required: ['sha256'],
              additionalProperties: false,
              properties: { sha256: { type: 'array', maxItems: 1000, items: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' } } },
            }),
            ...ok('200', "This device's captures among the hashes (unknown hashes are absent)", {
              type: 'object',
              properties: {
                known: { type: 'array', items: { type: 'object', properties: { sha256: { type: 'string' }, id: uuid, status: ref('CaptureStatus'), error: ref('ErrorDetail') } } },
              },
            }),
          },
          '400', '403',
        ),
      },
      '/v1/reprocess': {
        post: op(
          'Re-run a batch, or a store\'s captures in [from, to), through the pipeline (results are replaced, never doubled)',
          'admin, merchant (own)',
          {
            ...body({
              oneOf: [
                { type: 'object', required: ['batchId'], additionalProperties: false, properties: { batchId: uuid } },
                {
                  type: 'object',
                  required: ['storeId', 'from', 'to'],
                  additionalProperties: false,
                  properties: { storeId: uuid, from: { type: 'string', format: 'date-time' }, to: { type: 'string', format: 'date-time' } },
                },
              ],
            }),
            ...ok('202', 'A background job restarts the selection a page at a time, pausing while the pipeline is busy; follow it at the Location header (GET /v1/reprocess/{jobId})', {
              type: 'object',
              properties: { jobId: { type: 'string' }, state: { type: 'string' }, total: { type: 'integer', description: 'Captures in the selection when it was queued' } },
            }),
          },
          '400', '403', '404',
        ),
      },
      '/v1/reprocess/{jobId}': {
        get: op(
          'Follow a reprocess job: state and progress (captures looked at, restarted, and those whose stored image was already deleted, KEEP_IMAGES=false)',
          'admin, merchant (own)',
          {
            parameters: [{ name: 'jobId', in: 'path', required: true, schema: { type: 'string' } }],
            ...ok('200', 'The reprocess job', {
              type: 'object',
              properties: {
                jobId: { type: 'string' },
                selection: { type: 'object' },
                state: { type: 'string', examples: ['waiting', 'active', 'delayed', 'completed', 'failed'] },
                progress: nullable({ type: 'object', properties: { total: { type: 'integer' }, done: { type: 'integer' }, queued: { type: 'integer' }, imageGone: { type: 'integer' } } }),
                attempts: { type: 'integer' },
                error: { type: 'string' },
              },
            }),
          },
          '400', '403', '404',
        ),
      },
      '/v1/reembed': {
        post: op(
          'Migrate members to another model pack: a background job embeds every enrolled face with it from the stored enrolment images, then makes it the active pack (workers restart on it); recognition never mixes two packs',
          'admin',
          {
            ...body({ type: 'object', required: ['pack'], additionalProperties: false, properties: { pack: { enum: ['default', 'retinaface', 'insightface'] } } }),
            ...ok('202', 'Migration queued (or the same one already under way: alreadyRunning)', {
              type: 'object',
              properties: { jobId: { type: 'string' }, pack: { type: 'string' }, activePack: { type: 'string' }, alreadyRunning: { type: 'boolean' } },
            }),
          },
          '400', '403', '409',
        ),
      },
      '/v1/reembed/{jobId}': {
        get: op(
          'Follow a migration: state, progress {pass, done, total, failed}, then its result (faces re-embedded, faces that could not be, whether the pack was switched) or why it failed (e.g. missing model files)',
          'admin',
          {
            parameters: [{ name: 'jobId', in: 'path', required: true, schema: { type: 'string' } }],
            ...ok('200', 'The migration', {
              type: 'object',
              properties: {
                jobId: { type: 'string' },
                pack: { type: 'string' },
                catchUp: { type: 'boolean' },
                state: { type: 'string', examples: ['waiting', 'active', 'completed', 'failed'] },
                activePack: { type: 'string' },
                progress: nullable({ type: 'object', properties: { pass: { type: 'integer' }, done: { type: 'integer' }, total: { type: 'integer' }, failed: { type: 'integer' } } }),
                attempts: { type: 'integer' },
                result: { type: 'object' },
                error: { type: 'string' },
              },
            }),
          },
          '400', '403', '404',
        ),
      },
      '/v1/batches/{id}': {
        get: op('Read a batch and the status of its captures', 'admin, merchant (own), device (its own)', { parameters: [idParam('Batch')], ...ok('200', 'The batch', ref('Batch')) }, '400', '404'),
      },
      '/v1/captures/{id}': {
        get: op('Read a capture and its faces', 'admin, merchant (own), device (its own)', { parameters: [idParam('Capture')], ...ok('200', 'The capture', ref('Capture')) }, '400', '404'),
      },
      '/v1/identify': {
        post: op(
          'Best member matches for each face of an image (face sign-in), synchronous',
          'merchant, admin (with merchantId)',
          {
            parameters: [
              { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 10, default: 3 } },
              { name: 'merchantId', in: 'query', schema: uuid, description: 'Required with an admin key' },
            ],
            ...multipartImage,
            ...ok('200', 'Faces and their best member matches', ref('IdentifyResult')),
          },
          '400', '403', '404', '413', '415', '422', '429', '503',
        ),
      },
      '/v1/stores/{id}/analytics/traffic': { get: analyticsOp('Visits, unique subjects, members, new and returning visitors per bucket') },
      '/v1/stores/{id}/analytics/demographics': { get: analyticsOp('Age and gender breakdown per bucket') },
      '/v1/stores/{id}/analytics/visitors': { get: analyticsOp('New versus returning visitors per bucket') },
      '/v1/stores/{id}/analytics/peak-hours': { get: analyticsOp('Visits by weekday and local hour') },
      '/v1/stores/{id}/recognitions': {
        get: op(
          'Recent member recognitions at a store',
          'admin, merchant (own stores)',
          {
            parameters: [
              idParam('Store'),
              { name: 'since', in: 'query', schema: { type: 'string' } },
              { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
              { name: 'format', in: 'query', schema: { enum: ['json', 'csv'] } },
            ],
            ...ok('200', 'Recognitions', { type: 'object' }),
          },
          '400', '403', '404',
        ),
      },
      '/v1/merchants/{id}/analytics/summary': {
        get: op(
          'Totals over every store of a merchant, and per-store totals a page of stores at a time (at most 50 stores per answer)',
          'admin, merchant (own)',
          {
            parameters: [
              idParam('Merchant'),
              ...rangeParams,
              { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 50, default: 50 }, description: 'Stores per page' },
              { name: 'cursor', in: 'query', schema: { type: 'string' }, description: 'nextCursor of the previous page' },
            ],
            ...ok('200', 'Summary: totals over every store, `stores` (this page) and `nextCursor` (null on the last page)', { type: 'object' }),
          },
          '400', '403', '404',
        ),
      },
      '/healthz': { get: op('Liveness', 'public', ok('200', 'The process answers', { type: 'object', properties: { status: { const: 'ok' } } })) },
      '/readyz': {
        get: op('Readiness: MySQL, Redis, Chroma, model files', 'public', {
          responses: {
            '200': { description: 'Ready', content: json({ type: 'object', properties: { status: { const: 'ready' }, checks: { type: 'object' } } }) },
            '503': { description: 'A dependency is not usable', content: json({ type: 'object', properties: { status: { const: 'unready' }, checks: { type: 'object' }, error: ref('ErrorDetail') } }) },
          },
        }),
      },
      '/metrics': { get: op('Prometheus metrics', 'public', { responses: { '200': { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } } }) },
      '/v1/openapi.json': { get: op('This document', 'public', ok('200', 'OpenAPI 3.1', { type: 'object' })) },
      '/admin/queues': {
        get: {
          summary: 'Bull Board (HTML): every queue; admin key as Basic password (any user) or Bearer token',
          security: [{ basicAdmin: [] }, { bearerKey: [] }],
          'x-roles': ['admin'],
          responses: { '200': { description: 'The board' }, ...errors('401', '403') },
        },
      },
    },
  };
}
