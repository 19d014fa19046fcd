/**
 * The queue contract: the only place where stages, the API and the workers meet. Every job kind
 * has one row in JOBS (its queue and validated payload); producers go through `Queues.enqueue`
 * (src/queue/queues.ts) and consumers receive the parsed payload (src/queue/worker.ts).
 *
 * The five pipeline stages run on three queues, one per failure domain: `vision` (CPU and models:
 * preprocess, detect and embed as checkpointed steps of one job, so decoded pixels never leave the
 * process that decoded them), `match` (the vector database) and `aggregate` (MySQL).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { PACK_NAMES } from '../config.js';
import { SUBJECT_KINDS } from '../gallery/gallery.js';
import type { Gender } from '../vision/types.js';

export const STAGES = ['preprocess', 'detect', 'embed', 'match', 'aggregate'] as const;
export type Stage = (typeof STAGES)[number];

export const PIPELINE_QUEUES = ['vision', 'match', 'aggregate'] as const;
export type PipelineQueue = (typeof PIPELINE_QUEUES)[number];

/** The steps each pipeline queue runs, in order. */
export const STAGES_OF_QUEUE = {
  vision: ['preprocess', 'detect', 'embed'],
  match: ['match'],
  aggregate: ['aggregate'],
} as const satisfies Record<PipelineQueue, readonly Stage[]>;

/** Synchronous requests from the API (enrolment, identify) answered by a worker that owns the models. */
export const INTERACTIVE_QUEUE = 'interactive';
/** Background re-embedding of enrolled faces into another model pack, then the switch to it. */
export const REEMBED_QUEUE = 'reembed';
/** Signed notifications to merchants' webhooks, retried on their own so they never hold up the pipeline. */
export const WEBHOOK_QUEUE = 'webhooks';
/** Operator requests too large for a request: reprocessing a batch or a store's range, a page at a time. */
export const OPERATIONS_QUEUE = 'operations';

export const QUEUE_NAMES = [...PIPELINE_QUEUES, INTERACTIVE_QUEUE, REEMBED_QUEUE, WEBHOOK_QUEUE, OPERATIONS_QUEUE] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

const GENDERS = ['male', 'female'] as const satisfies readonly Gender[];

const id = z.string().uuid();
const blobKey = z.string().regex(/^[a-z0-9/_.-]+$/);
const point = z.tuple([z.number(), z.number()]);
const box = z.object({ x: z.number(), y: z.number(), width: z.number().positive(), height: z.number().positive() });

export const packNameSchema = z.enum(PACK_NAMES);
export const subjectKindSchema = z.enum(SUBJECT_KINDS);

export const detectedFaceSchema = z.object({ box, score: z.number().min(0).max(1), landmarks: z.array(point).length(5) });

/** A described face in original-image pixels, as match and aggregate receive it. */
export const capturedFaceSchema = detectedFaceSchema.extend({
  age: z.number(),
  gender: z.enum(GENDERS),
  genderConfidence: z.number(),
  quality: z.object({ eyeDistance: z.number(), sharpness: z.number(), yaw: z.number() }),
});
export type CapturedFace = z.infer<typeof capturedFaceSchema>;

/** 512 float32 as base64: about 2.7 kB a face, the only "tensor" that crosses a queue. */
const embeddingSchema = z.string().base64();

export const faceMatchSchema = z.object({
  faceIndex: z.number().int().min(0),
  kind: subjectKindSchema,
  subjectId: id,
  similarity: z.number(),
  newVisitor: z.boolean(),
});
export type FaceMatch = z.infer<typeof faceMatchSchema>;

const captureRun = z.object({
  captureId: id,
  /** Bumped on every restart or reprocess, so a re-run is not deduplicated against an earlier run's jobs. */
  run: z.number().int().min(0),
});

/** What a failed vision job already finished: a retry resumes after it. Written only on failure. */
const visionCheckpoint = z.object({
  /** Decoded size and EXIF time are in MySQL. */
  decodedRecorded: z.boolean().optional(),
  /** The detector's faces, in the deterministic working image's pixels. */
  faces: z.array(detectedFaceSchema).max(200).optional(),
});
export type VisionCheckpoint = z.infer<typeof visionCheckpoint>;

const MAX_FACES = 200;

export const JOBS = {
  vision: { queue: 'vision', payload: captureRun.extend({ checkpoint: visionCheckpoint.optional() }) },
  match: {
    queue: 'match',
    payload: captureRun.extend({
      merchantId: id,
      capturedAt: z.string().datetime(),
      /** The pack that embedded the faces: match searches its collections even while workers switch packs. */
      pack: packNameSchema,
      faces: z.array(capturedFaceSchema.extend({ embedding: embeddingSchema })).max(MAX_FACES),
      /** The vision stage stored the faces' crops (the merchant keeps them): aggregate drops a passer-by's. */
      cropsKept: z.boolean().optional(),
    }),
  },
  aggregate: {
    queue: 'aggregate',
    payload: captureRun.extend({
      /** With its embedding (kept with a matched face, for "not this person"); older jobs have none. */
      faces: z.array(capturedFaceSchema.extend({ embedding: embeddingSchema.optional() })).max(MAX_FACES),
      matches: z.array(faceMatchSchema).max(MAX_FACES),
      pack: packNameSchema.optional(),
      cropsKept: z.boolean().optional(),
    }),
  },
  enrol: { queue: INTERACTIVE_QUEUE, payload: z.object({ personId: id, merchantId: id, faceId: id, imageKey: blobKey }) },
  identify: { queue: INTERACTIVE_QUEUE, payload: z.object({ merchantId: id, imageKey: blobKey, limit: z.number().int().min(1).max(10) }) },
  /**
   * Embed every enrolled face that has no vector in `pack` yet, then make `pack` the active one.
   * `catchUp`: queued by a worker that enrolled a face in the old pack after the switch; it only fills gaps.
   */
  reembed: { queue: REEMBED_QUEUE, payload: z.object({ pack: packNameSchema, catchUp: z.boolean().optional() }) },
  /**
   * Restart every capture of a batch, or of a store in [from, to), under a new run. `merchantId`: the
   * owner of the selection (only it and admins read the job). `after` and `progress`: written after
   * each page, so a retry resumes there.
   */
  reprocess: {
    queue: OPERATIONS_QUEUE,
    payload: z.object({
      merchantId: id,
      selection: z.union([z.strictObject({ batchId: id }), z.strictObject({ storeId: id, from: z.string().datetime(), to: z.string().datetime() })]),
      after: z.object({ id, capturedAt: z.string().datetime() }).optional(),
      progress: z.object({ total: z.number().int(), done: z.number().int(), queued: z.number().int(), imageGone: z.number().int() }).optional(),
    }),
  },
  'member.recognized': {
    queue: WEBHOOK_QUEUE,
    payload: z.object({
      type: z.literal('member.recognized'),
      merchantId: id,
      storeId: id,
      personId: id,
      captureId: id,
      faceIndex: z.number().int().min(0),
      similarity: z.number(),
      capturedAt: z.string().datetime(),
      /** The capture's run: one delivery per (capture, face, run). Not part of the delivered body. */
      run: z.number().int().min(0),
    }),
  },
} as const satisfies Record<string, { queue: QueueName; payload: z.ZodTypeAny }>;

export type JobName = keyof typeof JOBS;
export type JobPayload<N extends JobName> = z.infer<(typeof JOBS)[N]['payload']>;
/** The job names a queue carries. */
export type JobsOf<Q extends QueueName> = { [N in JobName]: (typeof JOBS)[N]['queue'] extends Q ? N : never }[JobName];

export function jobNamesOf(queue: QueueName): JobName[] {
  return (Object.keys(JOBS) as JobName[]).filter((name) => JOBS[name].queue === queue);
}

/**
 * Deterministic job ids where a duplicate enqueue must be a no-op: a pipeline hop of one capture
 * run, one webhook delivery per recognised face. Other jobs get BullMQ's own ids.
 */
export function jobIdOf<N extends JobName>(name: N, payload: JobPayload<N>): string | undefined {
  if ((PIPELINE_QUEUES as readonly string[]).includes(name)) {
    const { captureId, run } = payload as { captureId: string; run: number };
    return pipelineJobId(name as PipelineQueue, { captureId, run });
  }
  if (name === 'member.recognized') {
    const event = payload as JobPayload<'member.recognized'>;
    return `webhook-${event.captureId}-${event.faceIndex}-${event.run}`;
  }
  return undefined;
}

/** The job of one capture run on a pipeline queue (the sweeper looks jobs up by it). */
export function pipelineJobId(queue: PipelineQueue, run: { captureId: string; run: number }): string {
  return `${queue}-${run.captureId}-${run.run}`;
}

export type MemberRecognizedEvent = Omit<JobPayload<'member.recognized'>, 'run'>;

export type FaceSummary = Omit<CapturedFace, 'genderConfidence' | 'quality'>;

type ImageErrorCode = 'unsupported_format' | 'truncated' | 'empty' | 'too_large';

/** Results returned through BullMQ to the waiting API request. */
export type InteractiveResult = {
  enrol: { ok: true; faceId: string; face: FaceSummary } | { ok: false; code: 'no_face' | 'multiple_faces' | 'person_erased' | ImageErrorCode; message: string };
  identify: { ok: true; faces: (FaceSummary & { matches: { personId: string; similarity: number }[] })[] } | { ok: false; code: ImageErrorCode; message: string };
};

export type ReprocessSelection = JobPayload<'reprocess'>['selection'];
/** `done` of `total` captures looked at; `queued` restarted, `imageGone` not (their image was deleted). */
export type ReprocessProgress = NonNullable<JobPayload<'reprocess'>['progress']>;

export type ReembedProgress = { pass: number; done: number; total: number; failed: number };
export type ReembedResult = {
  pack: JobPayload<'reembed'>['pack'];
  /** Enrolled faces when the job ended, and how many already had a vector in `pack`. */
  faces: number;
  alreadyPresent: number;
  reembedded: number;
  /** Faces that could not be re-embedded (image gone, no face found by the pack's detector), first 100. */
  failed: { faceId: string; personId: string; reason: string }[];
  failedCount: number;
  switched: boolean;
};

/**
 * A stable UUID-shaped id derived from a name: the idempotency rule for rows and vectors a retried
 * step creates (a capture's face ids, a new visitor's id), so a retry reuses its first try's ids.
 */
export function deterministicId(name: string): string {
  const hex = createHash('sha256').update(name).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex[16], 16) & 3) | 8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export const faceIdOf = (captureId: string, faceIndex: number) => deterministicId(`face:${captureId}:${faceIndex}`);
export const newVisitorIdOf = (captureId: string, faceIndex: number) => deterministicId(`visitor:${captureId}:${faceIndex}`);

export function encodeEmbedding(embedding: Float32Array): string {
  return Buffer.from(embedding.buffer, embedding.byteOffset, embedding.byteLength).toString('base64');
}

export function decodeEmbedding(encoded: string): Float32Array {
  const bytes = Buffer.from(encoded, 'base64');
  const embedding = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(embedding.buffer).set(bytes);
  return embedding;
}
