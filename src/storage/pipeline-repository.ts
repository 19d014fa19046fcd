/** The pipeline's reads and writes in MySQL: capture progress, visitors, and the final results. */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Stage } from '../queue/contract.js';
import type { CaptureProgress } from '../queue/stage-worker.js';
import type { FaceMatch } from '../services/matching.js';
import type { StoredFace } from './work-files.js';
import { READ_COMMITTED, retryOnLockConflict } from './transactions.js';

export type SightingRecord = {
  faceId: string;
  faceIndex: number;
  storeId: string;
  merchantId: string;
  subjectKind: 'member' | 'visitor';
  subjectId: string;
  seenAt: Date;
  age: number | null;
  gender: 'male' | 'female' | null;
};

/** Work done inside the results transaction: locks taken first, then visits, rollups and perks. */
export type SubjectRef = { merchantId: string; subjectKind: 'member' | 'visitor'; subjectId: string };

export type ResultsHooks = {
  /** Called before any row is written, to take per-subject locks in a fixed order (no deadlocks). */
  lock(trx: Knex.Transaction, subjects: SubjectRef[]): Promise<void>;
  /** Called before a reprocessed capture's earlier faces and sightings are deleted. */
  retract(trx: Knex.Transaction, captureId: string): Promise<void>;
  /** Called once the faces and sightings rows exist. */
  recorded(trx: Knex.Transaction, sightings: SightingRecord[]): Promise<void>;
};

export type SavedResults = { saved: boolean; capture: CaptureRow | undefined };

export type CaptureRow = {
  id: string;
  batch_id: string;
  device_id: string;
  store_id: string;
  merchant_id: string;
  blob_key: string;
  status: 'queued' | 'processing' | 'done' | 'failed';
  stage: Stage;
  run: number;
  captured_at: Date;
  captured_at_source: 'device' | 'exif' | 'receipt';
  updated_at: Date;
};

/** A stable UUID-shaped id derived from a name, so a retried step reuses the id of its first try. */
export function deterministicId(name: string): string {
  const hex = createHash('sha256').update(name).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex[16], 16) & 3) | 8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const OPEN = ['queued', 'processing'] as const;

/**
 * The results transaction runs at READ COMMITTED (`hooks.lock` serialises every writer of a
 * subject's visits) and still deadlocks now and then: a range read locks the first row past its
 * range, which may be another subject's visit. It is re-run after a few milliseconds rather than
 * failing the job into a second of queue backoff.
 */
const RESULTS_ATTEMPTS = 8;

export class PipelineRepository implements CaptureProgress {
  constructor(private readonly db: Knex) {}

  async begin(captureId: string, run: number, stage: Stage): Promise<boolean> {
    const updated = await this.db('captures')
      .where({ id: captureId, run })
      .whereIn('status', OPEN)
      .update({ status: 'processing', stage, updated_at: this.db.raw('CURRENT_TIMESTAMP(3)') });
    return updated > 0;
  }

  async fail(captureId: string, run: number, code: string, message: string): Promise<void> {
    await this.db('captures')
      .where({ id: captureId, run })
      .whereIn('status', OPEN)
      .update({ status: 'failed', error_code: code, error_message: message, updated_at: this.db.raw('CURRENT_TIMESTAMP(3)') });
  }

  async capture(captureId: string): Promise<CaptureRow | undefined> {
    return this.db<CaptureRow>('captures').where({ id: captureId }).first();
  }

  /** Records the decoded size, and the EXIF time when the device sent none. */
  async recordDecoded(captureId: string, size: { width: number; height: number }, exifCapturedAt?: Date): Promise<void> {
    await this.db('captures').where({ id: captureId }).update({ width: size.width, height: size.height });
    if (exifCapturedAt) {
      await this.db('captures')
        .where({ id: captureId, captured_at_source: 'receipt' })
        .update({ captured_at: exifCapturedAt, captured_at_source: 'exif' });
    }
  }

  /**
   * Runs `create` while holding a per-merchant MySQL named lock, so two match workers cannot both
   * decide that one new face needs a new visitor: the second one waits, searches again, and finds
   * the visitor the first one stored.
   */
  async withVisitorLock<T>(merchantId: string, work: () => Promise<T>): Promise<T> {
    const connection = await this.db.client.acquireConnection();
    const lockName = `faceperks:visitors:${merchantId}`;
    try {
      const [rows] = await connection.promise().query('SELECT GET_LOCK(?, 30) AS ok', [lockName]);
      if ((rows as { ok: number | null }[])[0]?.ok !== 1) throw new Error(`timed out waiting for ${lockName}`);
      try {
        return await work();
      } finally {
        await connection.promise().query('SELECT RELEASE_LOCK(?)', [lockName]);
      }
    } finally {
      await this.db.client.releaseConnection(connection);
    }
  }

  async createVisitor(id: string, merchantId: string, seenAt: Date): Promise<void> {
    await this.db('visitors')
      .insert({ id, merchant_id: merchantId, first_seen_at: seenAt, last_seen_at: seenAt })
      .onConflict('id')
      .ignore();
  }

  async visitorExists(id: string): Promise<boolean> {
    return Boolean(await this.db('visitors').where({ id }).first('id'));
  }

  /**
   * Writes a capture's faces and sightings and marks it done, all in one transaction that first
   * locks the capture row: a redelivered job finds the capture final and writes nothing. Returns
   * whether it wrote, and the capture row as it read it (undefined when the capture is gone).
   */
  async saveResults(input: { captureId: string; run: number; faces: StoredFace[]; matches: FaceMatch[] }, hooks: ResultsHooks): Promise<SavedResults> {
    return retryOnLockConflict(
      () => this.db.transaction((trx) => this.writeResults(trx, input, hooks), READ_COMMITTED),
      RESULTS_ATTEMPTS,
      (attempt) => Math.random() * 10 * attempt,
    );
  }

  private async writeResults(
    trx: Knex.Transaction,
    input: { captureId: string; run: number; faces: StoredFace[]; matches: FaceMatch[] },
    hooks: ResultsHooks,
  ): Promise<SavedResults> {
    const { captureId, run, faces, matches } = input;
    const capture = await trx<CaptureRow>('captures').where({ id: captureId }).forUpdate().first();
    if (!capture || capture.run !== run || !OPEN.includes(capture.status as (typeof OPEN)[number])) return { saved: false, capture };

    const matchOf = new Map(matches.map((match) => [match.faceIndex, match]));
    const faceId = (index: number) => deterministicId(`face:${captureId}:${index}`);
    const sightings: SightingRecord[] = matches.map((match) => ({
      faceId: faceId(match.faceIndex),
      faceIndex: match.faceIndex,
      storeId: capture.store_id,
      merchantId: capture.merchant_id,
      subjectKind: match.kind,
      subjectId: match.subjectId,
      seenAt: capture.captured_at,
      age: faces[match.faceIndex]?.age ?? null,
      gender: faces[match.faceIndex]?.gender ?? null,
    }));
    const earlier: SubjectRef[] = (
      await trx('sightings').where({ capture_id: captureId }).select('merchant_id', 'subject_kind', 'subject_id')
    ).map((row: { merchant_id: string; subject_kind: 'member' | 'visitor'; subject_id: string }) => ({
      merchantId: row.merchant_id,
      subjectKind: row.subject_kind,
      subjectId: row.subject_id,
    }));
    await hooks.lock(trx, [...earlier, ...sightings]);
    if (earlier.length > 0) await hooks.retract(trx, captureId);
    // A reprocessed capture replaces the faces of its earlier run.
    await trx('faces').where({ capture_id: captureId }).delete();
    if (faces.length > 0) {
      await trx('faces').insert(
        faces.map((face, index) => {
          const match = matchOf.get(index);
          return {
            id: faceId(index),
            capture_id: captureId,
            face_index: index,
            box_x: face.box.x,
            box_y: face.box.y,
            box_width: face.box.width,
            box_height: face.box.height,
            landmarks: JSON.stringify(face.landmarks),
            score: face.score,
            age: face.age,
            gender: face.gender,
            gender_confidence: face.genderConfidence,
            quality: JSON.stringify(face.quality),
            match_kind: match?.kind ?? null,
            person_id: match?.kind === 'member' ? match.subjectId : null,
            visitor_id: match?.kind === 'visitor' ? match.subjectId : null,
            similarity: match?.similarity ?? null,
          };
        }),
      );
    }

    if (sightings.length > 0) {
      await trx('sightings').insert(
        sightings.map((sighting) => ({
            face_id: sighting.faceId,
            capture_id: captureId,
            store_id: sighting.storeId,
            merchant_id: sighting.merchantId,
            subject_kind: sighting.subjectKind,
            subject_id: sighting.subjectId,
            person_id: sighting.subjectKind === 'member' ? sighting.subjectId : null,
            visitor_id: sighting.subjectKind === 'visitor' ? sighting.subjectId : null,
            seen_at: sighting.seenAt,
            age: sighting.age,
            gender: sighting.gender,
          })),
      );
      const seenAt = capture.captured_at;
      const people = sightings.filter((s) => s.subjectKind === 'member').map((s) => s.subjectId);
      const visitors = sightings.filter((s) => s.subjectKind === 'visitor').map((s) => s.subjectId);
      if (people.length > 0) {
        await trx('people')
          .whereIn('id', people)
          .update({ last_seen_at: trx.raw('GREATEST(COALESCE(last_seen_at, ?), ?)', [seenAt, seenAt]) });
      }
      if (visitors.length > 0) {
        await trx('visitors')
          .whereIn('id', visitors)
          .update({
            first_seen_at: trx.raw('LEAST(first_seen_at, ?)', [seenAt]),
            last_seen_at: trx.raw('GREATEST(last_seen_at, ?)', [seenAt]),
          });
      }
      await hooks.recorded(trx, sightings);
    }

    await trx('captures').where({ id: captureId }).update({
      status: 'done',
      stage: 'aggregate',
      face_count: faces.length,
      error_code: null,
      error_message: null,
      updated_at: trx.raw('CURRENT_TIMESTAMP(3)'),
    });
    return { saved: true, capture };
  }
}
