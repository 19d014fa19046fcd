/**
 * The queue contract: the only place where stages, the API and the workers meet.
 * Each queue carries one job kind with a validated payload. Pixels, tensors and
 * embeddings never travel through Redis; payloads carry ids and blob keys only.
 */
import { z } from 'zod';
import { PACK_NAMES } from '../config.js';

export const STAGES = ['preprocess', 'detect', 'embed', 'match', 'aggregate'] as const;
export type Stage = (typeof STAGES)[number];

/** Synchronous requests from the API (enrolment, identify) answered by a worker that owns the models. */
export const INTERACTIVE_QUEUE = 'interactive';
/** Scheduled housekeeping: sweeper of stuck captures, retention. */
export const MAINTENANCE_QUEUE = 'maintenance';
/** Background re-embedding of enrolled faces into another model pack, then the switch to it. */
export const REEMBED_QUEUE = 'reembed';
/** Signed notifications to merchants' webhooks, retried on their own so they never hold up the pipeline. */
export const WEBHOOK_QUEUE = 'webhooks';
export const ALL_QUEUES = [...STAGES, INTERACTIVE_QUEUE, MAINTENANCE_QUEUE, REEMBED_QUEUE, WEBHOOK_QUEUE] as const;
export type QueueName = (typeof ALL_QUEUES)[number];

const id = z.string().uuid();
const blobKey = z.string().regex(/^[a-z0-9/_.-]+$/);

/** A reference to the oriented, size-capped RGB working image written by preprocess. */
export const workImageSchema = z.object({
  key: blobKey,
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  /** work pixels per original pixel (<= 1). */
  scale: z.number().positive().max(1),
});
export type WorkImageRef = z.infer<typeof workImageSchema>;

const point = z.tuple([z.number(), z.number()]);
export const detectedFaceSchema = z.object({
  box: z.object({ x: z.number(), y: z.number(), width: z.number().positive(), height: z.number().positive() }),
  score: z.number().min(0).max(1),
  landmarks: z.array(point).length(5),
});

const capturePayload = z.object({
  captureId: id,
  /** Bumped on every reprocess so a re-run is not deduplicated against the previous run's job ids. */
  run: z.number().int().min(0),
});

export const payloadSchemas = {
  preprocess: capturePayload,
  detect: capturePayload.extend({ work: workImageSchema }),
  embed: capturePayload.extend({ work: workImageSchema, faces: z.array(detectedFaceSchema).max(200) }),
  /**
   * `facesKey` is a blob holding the described faces (boxes, attributes, embeddings); `pack` is the
   * model pack that embedded them, so match searches that pack's collections even while workers
   * switch packs (absent in jobs queued before it existed: the match worker's own pack).
   */
  match: capturePayload.extend({ facesKey: blobKey, pack: z.enum(PACK_NAMES).optional() }),
  aggregate: capturePayload.extend({
    facesKey: blobKey,
    matches: z.array(
      z.object({
        faceIndex: z.number().int().min(0),
        kind: z.enum(['member', 'visitor']),
        subjectId: id,
        similarity: z.number(),
        newVisitor: z.boolean(),
      }),
    ),
  }),
} satisfies Record<Stage, z.ZodTypeAny>;

export type StagePayload<S extends Stage> = z.infer<(typeof payloadSchemas)[S]>;

/** The stage that follows each stage, or null at the end of the pipeline. */
export const NEXT_STAGE: Record<Stage, Stage | null> = {
  preprocess: 'detect',
  detect: 'embed',
  embed: 'match',
  match: 'aggregate',
  aggregate: null,
};

/** Deterministic job id: a redelivered or duplicated enqueue of the same run is a no-op. */
export function stageJobId(stage: Stage, payload: { captureId: string; run: number }): string {
  return `${stage}-${payload.captureId}-${payload.run}`;
}

export const interactiveSchemas = {
  enrol: z.object({ personId: id, merchantId: id, faceId: id, imageKey: blobKey }),
  identify: z.object({ merchantId: id, imageKey: blobKey, limit: z.number().int().min(1).max(10) }),
};
export type InteractiveJob = keyof typeof interactiveSchemas;

/**
 * A reembed job (REEMBED_QUEUE, job name 'reembed'): embed every enrolled face that has no vector in
 * `pack` yet, then make `pack` the active one. `catchUp`: queued by a worker that enrolled a face
 * in the old pack after the switch; it only fills gaps of the (already active) pack.
 */
export const reembedSchema = z.object({ pack: z.enum(PACK_NAMES), catchUp: z.boolean().optional() });
export type ReembedPayload = z.infer<typeof reembedSchema>;
export type ReembedProgress = { pass: number; done: number; total: number; failed: number };
export type ReembedResult = {
  pack: (typeof PACK_NAMES)[number];
  /** Enrolled faces when the job ended, and how many already had a vector in `pack`. */
  faces: number;
  alreadyPresent: number;
  reembedded: number;
  /** Faces that could not be re-embedded (image gone, no face found by the pack's detector), first 100. */
  failed: { faceId: string; personId: string; reason: string }[];
  failedCount: number;
  switched: boolean;
};
export type InteractivePayload<J extends InteractiveJob> = z.infer<(typeof interactiveSchemas)[J]>;

export type FaceSummary = {
  box: { x: number; y: number; width: number; height: number };
  score: number;
  landmarks: [number, number][];
  age: number;
  gender: 'male' | 'female';
};

/** Results returned through BullMQ to the waiting API request. */
export type InteractiveResult = {
  enrol:
    | { ok: true; faceId: string; face: FaceSummary }
    | { ok: false; code: 'no_face' | 'multiple_faces' | 'unsupported_format' | 'truncated' | 'empty' | 'too_large'; message: string };
  identify:
    | {
        ok: true;
        faces: (FaceSummary & { matches: { personId: string; similarity: number }[] })[];
      }
    | { ok: false; code: 'unsupported_format' | 'truncated' | 'empty' | 'too_large'; message: string };
};

export const memberRecognizedEventSchema = z.object({
  type: z.literal('member.recognized'),
  merchantId: id,
  storeId: id,
  personId: id,
  captureId: id,
  faceIndex: z.number().int().min(0),
  similarity: z.number(),
  capturedAt: z.string().datetime(),
});
export type MemberRecognizedEvent = z.infer<typeof memberRecognizedEventSchema>;

/** One delivery per (capture, face, run): a redelivered aggregate job does not notify twice. */
export function webhookJobId(event: MemberRecognizedEvent, run: number): string {
  return `webhook-${event.captureId}-${event.faceIndex}-${run}`;
}
