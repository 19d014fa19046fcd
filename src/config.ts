import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();
const unitInterval = z.coerce.number().min(-1).max(1);

function isCidr(value: string): boolean {
  const [address, prefix, ...rest] = value.split('/');
  const family = isIP(address);
  return family !== 0 && rest.length === 0 && /^\d{1,3}$/.test(prefix ?? '') && Number(prefix) <= (family === 4 ? 32 : 128);
}

/** Model packs the service knows; each keeps its vectors in collections of its own. */
export const PACK_NAMES = ['default', 'retinaface', 'insightface'] as const;

const schema = z.object({
  PORT: port.default(3000),
  DATABASE_URL: z.string().url().default('mysql://root@127.0.0.1:3306/faceperks'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Unset: `npm start` runs the bundled local Chroma server on CHROMA_PORT with its data under DATA_DIR. */
  CHROMA_URL: z.string().url().optional(),
  CHROMA_PORT: port.default(8000),
  DATA_DIR: z.string().min(1).default('./data'),
  /** Where blobs live: unset (or empty, or `file:`) for DATA_DIR/blobs on local disk, `s3://bucket/prefix` for S3-compatible object storage. */
  BLOB_URL: z.string().regex(/^(|file:|s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[A-Za-z0-9/_.-]*)?)$/, 'expected file: or s3://bucket/prefix').optional(),
  /** Folder holding extracted model files; defaults to DATA_DIR/models. */
  MODELS_DIR: z.string().min(1).optional(),
  FACEPERKS_ADMIN_KEY: z.string().min(16).optional(),
  /** The initial pack. Once `faceperks reembed` has switched packs, the stored active pack wins. */
  MODEL_PACK: z.enum(PACK_NAMES).default('default'),
  /** How often worker processes check whether a reembed switched the active pack. */
  PACK_WATCH_MS: positiveInt.default(10_000),
  /**
   * Queue prefix. Unset: derived from the deployment's id, stored in its database at first start
   * (src/storage/settings.ts), so two deployments sharing one Redis never take each other's jobs.
   */
  QUEUE_PREFIX: z.string().regex(/^[a-z0-9_-]+$/i).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  /**
   * Cosine thresholds for the default recognizer (fr_feature), from `npm run eval` on ../shared/faces:
   * FAR 1e-3 falls at 0.31 and thresholds 0.32..0.42 keep left-out identities <= 2% with enrolled probes
   * >= 97%. Members take 0.40 (left-out 0.7%, enrolled 97.3%), near the strict end, because pairs of
   * different people in the npm fixture group photos reach 0.36. Visitors take 0.42: the anonymous
   * gallery is larger and a false match merges two strangers.
   */
  MEMBER_THRESHOLD: unitInterval.default(0.4),
  VISITOR_THRESHOLD: unitInterval.default(0.42),
  /**
   * A new visitor's neighbours from this similarity up to the match threshold are suggested as
   * merges (GET /v1/visitors/suggestions). Chosen with `npm run eval:suggestions` (README).
   */
  SUGGESTION_THRESHOLD: unitInterval.default(0.3),
  /** Worker processes of `npm start` that run every pipeline stage (see src/supervisor.ts). */
  PIPELINE_PROCESSES: positiveInt.default(2),
  /** onnxruntime intra-op threads per session in a worker process. */
  INFERENCE_THREADS: positiveInt.default(1),
  /**
   * Scheduling niceness of worker processes that run only batch work (every worker but interactive):
   * with the cores saturated, the intake API and enrolment/identify keep answering first. 0 = as started.
   */
  BATCH_WORKER_NICE: z.coerce.number().int().min(0).max(19).default(10),
  DETECT_THRESHOLD: z.coerce.number().min(0).max(1).default(0.9),
  VISIT_GAP_MINUTES: positiveInt.default(30),
  PERK_POINTS: z.coerce.number().int().min(0).default(5),
  PERK_COOLDOWN_MINUTES: positiveInt.default(10),

  MAX_UPLOAD_BYTES: positiveInt.default(20 * 1024 * 1024),
  MAX_UPLOAD_FILES: positiveInt.default(100),
  MAX_UPLOAD_TOTAL_BYTES: positiveInt.default(200 * 1024 * 1024),
  MAX_IMAGE_PIXELS: positiveInt.default(50_000_000),
  /** Intake answers 429 while more stage jobs than this are waiting. */
  MAX_QUEUE_DEPTH: positiveInt.default(20_000),
  /** Per-device token bucket for POST /v1/captures: average rate and burst, in requests. */
  DEVICE_UPLOADS_PER_MINUTE: positiveInt.default(600),
  DEVICE_UPLOAD_BURST: positiveInt.default(60),
  /** Per-merchant token bucket for enrolment and identify together (they share the interactive workers). */
  MERCHANT_INTERACTIVE_PER_MINUTE: positiveInt.default(300),
  MERCHANT_INTERACTIVE_BURST: positiveInt.default(30),
  /** Longest side the preprocess stage keeps; boxes are still reported in original pixels. */
  WORK_IMAGE_MAX_SIDE: positiveInt.default(1280),
  /** false: a capture's stored image is deleted once it is done or failed (reprocessing then needs a re-upload). */
  KEEP_IMAGES: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** Anonymous visitors not seen for this many days are purged with their vectors. */
  VISITOR_RETENTION_DAYS: positiveInt.default(90),
  RETENTION_INTERVAL_MS: positiveInt.default(15 * 60_000),

  /**
   * Attempts of a pipeline job at a transient fault (Redis, MySQL, Chroma, blob store), backing off
   * exponentially from STAGE_BACKOFF_MS up to STAGE_BACKOFF_MAX_MS: by default about 18 minutes of
   * retries, after which the capture stays open for the sweeper. Only bad input fails a capture.
   */
  STAGE_ATTEMPTS: positiveInt.default(12),
  STAGE_BACKOFF_MS: positiveInt.default(1000),
  STAGE_BACKOFF_MAX_MS: positiveInt.default(5 * 60_000),
  SWEEP_INTERVAL_MS: positiveInt.default(60_000),
  /** A job whose worker stopped renewing its lock this long ago (process killed) is handed to another worker. */
  JOB_LOCK_MS: positiveInt.default(30_000),
  /** On SIGTERM the API answers /readyz 503 this long before it stops listening. */
  SHUTDOWN_UNREADY_MS: z.coerce.number().int().min(0).default(1000),
  /**
   * A capture whose last job gave up after its retries is re-enqueued by the sweeper once it has not
   * moved for this long times 2^run (at most 8×).
   */
  SWEEP_STALE_MS: positiveInt.default(5 * 60_000),
  /** A capture with no job at all in Redis (lost in a Redis restart or flush) is re-enqueued once it has not moved for this long. */
  SWEEP_LOST_MS: positiveInt.default(60_000),
  /** Images of failed captures are kept this long even with KEEP_IMAGES=false, so they can be reprocessed. */
  FAILED_IMAGE_RETENTION_DAYS: z.coerce.number().min(0).default(7),

  /**
   * Webhook targets in these CIDRs (comma-separated, e.g. `10.1.0.0/16,fd00::/8`) are allowed although
   * private, loopback or link-local; every other such target is refused at registration and delivery.
   */
  WEBHOOK_ALLOW_PRIVATE: z
    .string()
    .default('')
    .transform((list) => list.split(',').map((item) => item.trim()).filter(Boolean))
    .pipe(z.array(z.string().refine(isCidr, 'expected comma-separated CIDRs such as 10.0.0.0/8 or fd00::/8'))),
  /** A webhook delivery attempt gets no answer within this long: it failed. */
  WEBHOOK_TIMEOUT_MS: positiveInt.default(5000),
  /** Deliveries to one merchant at a time in a worker process, so a slow endpoint leaves the other slots to the others. */
  WEBHOOK_MERCHANT_CONCURRENCY: positiveInt.default(2),
});

export type Config = Omit<z.infer<typeof schema>, 'QUEUE_PREFIX'> & {
  /** Empty until resolved from the deployment id (src/storage/settings.ts) when not configured. */
  QUEUE_PREFIX: string;
  chromaUrl: string;
  modelsDir: string;
  blobsDir: string;
  chromaDir: string;
  databaseName: string;
};

export class ConfigError extends Error {}

/** Parses the environment once; a bad variable fails with one line naming it. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`invalid configuration: ${issue.path.join('.')}: ${issue.message}`);
  }
  const values = parsed.data;
  const dataDir = path.resolve(values.DATA_DIR);
  const databaseName = new URL(values.DATABASE_URL).pathname.replace(/^\//, '');
  if (!/^[A-Za-z0-9_]+$/.test(databaseName)) {
    throw new ConfigError('invalid configuration: DATABASE_URL: the path must name a database ([A-Za-z0-9_]+)');
  }
  return {
    ...values,
    QUEUE_PREFIX: values.QUEUE_PREFIX ?? '',
    DATA_DIR: dataDir,
    chromaUrl: values.CHROMA_URL ?? `http://127.0.0.1:${values.CHROMA_PORT}`,
    modelsDir: path.resolve(values.MODELS_DIR ?? path.join(dataDir, 'models')),
    blobsDir: path.join(dataDir, 'blobs'),
    chromaDir: path.join(dataDir, 'chroma'),
    databaseName,
  };
}
