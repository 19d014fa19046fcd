/**
 * `faceperks admin ...`: first-run setup — merchants, stores, devices and their keys, revocation —
 * and the operator actions `reprocess` and `reembed` (which may follow its migration with --wait).
 */
import { parse, required, UsageError } from '../args.js';
import { ApiClient, DEFAULT_RETRY } from '../http.js';

type Action = { path: (v: Record<string, string | undefined>, args: string[]) => string; method: string; body?: (v: Record<string, string | undefined>, args: string[]) => unknown };

const ACTIONS: Record<string, Action & { flags: string[]; positional?: string }> = {
  'create-merchant': { method: 'POST', path: () => '/v1/merchants', body: (_v, args) => ({ name: args.join(' ') }), flags: [], positional: 'NAME' },
  'merchant-key': { method: 'POST', path: (v) => `/v1/merchants/${enc(v.merchant)}/keys`, flags: ['merchant'] },
  'create-store': {
    method: 'POST',
    path: () => '/v1/stores',
    body: (v) => ({ merchantId: v.merchant, name: v.name, timezone: v.timezone }),
    flags: ['name', 'timezone'],
  },
  'create-device': { method: 'POST', path: (v) => `/v1/stores/${enc(v.store)}/devices`, body: (v) => ({ name: v.name }), flags: ['store', 'name'] },
  'device-key': { method: 'POST', path: (v) => `/v1/devices/${enc(v.device)}/keys`, flags: ['device'] },
  'revoke-key': { method: 'DELETE', path: (_v, args) => `/v1/keys/${enc(args[0])}`, flags: [], positional: 'KEY_ID' },
  reprocess: {
    method: 'POST',
    path: () => '/v1/reprocess',
    body: (v) => (v.batch ? { batchId: v.batch } : { storeId: v.store, from: v.from, to: v.to }),
    flags: [],
  },
  reembed: { method: 'POST', path: () => '/v1/reembed', body: (v) => ({ pack: v.pack }), flags: ['pack'] },
};

const POLL_MS = 2000;

const enc = (s: string | undefined) => encodeURIComponent(s ?? '');

export async function adminCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [name, ...rest] = argv;
  const action = name ? ACTIONS[name] : undefined;
  if (!action) throw new UsageError(`admin: unknown command ${JSON.stringify(name ?? '')}; one of ${Object.keys(ACTIONS).join(', ')}`);
  const { values, positionals } = parse(rest, {
    url: { type: 'string' },
    'admin-key': { type: 'string' },
    merchant: { type: 'string' },
    store: { type: 'string' },
    device: { type: 'string' },
    name: { type: 'string' },
    timezone: { type: 'string' },
    batch: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    pack: { type: 'string' },
    wait: { type: 'boolean' },
  });
  const v = values as Record<string, string | undefined>;
  const wait = values.wait === true;
  const follow = FOLLOWERS[name];
  if (wait && !follow) throw new UsageError(`admin ${name}: --wait is for ${Object.keys(FOLLOWERS).join(' and ')} only`);
  for (const flag of action.flags) required(v[flag], `--${flag}`);
  if (action.positional && positionals.length === 0) throw new UsageError(`admin ${name}: missing ${action.positional}`);
  if (!action.positional && positionals.length) throw new UsageError(`admin ${name}: unexpected argument ${positionals[0]}`);
  const url = required(v.url ?? env.FACEPERKS_URL, '--url (or FACEPERKS_URL)');
  const key = required(v['admin-key'] ?? env.FACEPERKS_ADMIN_KEY, '--admin-key (or FACEPERKS_ADMIN_KEY)');
  let client: ApiClient;
  try {
    client = new ApiClient(url, key, { ...DEFAULT_RETRY, attempts: 4 });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  // Creating is not idempotent: the client retries only what the server cannot have acted on.
  // A reembed request is safe to repeat: the server answers the migration already under way.
  const idempotent = action.method === 'DELETE' || name === 'reembed';
  const response = await client.request({ method: action.method, path: action.path(v, positionals), json: action.body?.(v, positionals), idempotent });
  if (wait && follow) return followJob(client, follow, String(response.body.jobId));
  if (response.status === 204) process.stdout.write(`${JSON.stringify({ revoked: positionals[0] })}\n`);
  else process.stdout.write(`${JSON.stringify(response.body, null, 2)}\n`);
  return 0;
}

/** The background jobs `--wait` follows: their status path and one progress line. */
type JobStatus = { state: string; pack?: string; progress: Record<string, number> | null };
type Follower = { path: (jobId: string) => string; line: (status: JobStatus) => string };

const FOLLOWERS: Record<string, Follower> = {
  reembed: {
    path: (jobId) => `/v1/reembed/${encodeURIComponent(jobId)}`,
    line: ({ pack, state, progress: p }) => (p ? `reembed ${pack}: ${state}, pass ${p.pass}: ${p.done}/${p.total} faces, ${p.failed} failed` : `reembed ${pack}: ${state}`),
  },
  reprocess: {
    path: (jobId) => `/v1/reprocess/${encodeURIComponent(jobId)}`,
    line: ({ state, progress: p }) => (p ? `reprocess: ${state}, ${p.done}/${p.total} captures, ${p.queued} queued, ${p.imageGone} image gone` : `reprocess: ${state}`),
  },
};

/** Polls a background job until it ends: progress lines on stderr, the final state as JSON on stdout; 1 if it failed. */
async function followJob(client: ApiClient, follower: Follower, jobId: string): Promise<number> {
  let last = '';
  for (;;) {
    const { body } = await client.request({ method: 'GET', path: follower.path(jobId) });
    if (body.state === 'completed' || body.state === 'failed') {
      process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
      return body.state === 'completed' ? 0 : 1;
    }
    const line = follower.line(body as JobStatus);
    if (line !== last) process.stderr.write(`${line}\n`);
    last = line;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
