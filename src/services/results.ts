/**
 * The aggregate stage's transaction, top to bottom: a capture's faces and sightings, its subjects'
 * visits and rollups, perks, and the capture marked done, all or nothing.
 *
 * Lock order (what keeps concurrent aggregate jobs from deadlocking): the capture row first, then
 * every subject it touches — this run's and an earlier run's — in one sorted pass (lockSubjects),
 * and only then any row that references them. The transaction runs at READ COMMITTED: the subject
 * locks serialise every writer of a subject's visits, and InnoDB's gap locks protected nothing
 * more while making captures of different subjects deadlock. The few deadlocks left (a range read
 * locks the first row past its range) re-run the transaction after a few milliseconds.
 */
import type { Knex } from 'knex';
import { faceIdOf, type CapturedFace, type FaceMatch } from '../queue/contract.js';
import type { CaptureLifecycle, CaptureRow } from '../storage/capture-lifecycle.js';
import { earlierSubjects, insertSightings, recordedMatches, storedAge, touchSubjects, writeFaces, type SightingRecord } from '../storage/results-repository.js';
import { HeldWrites, retryOnLockConflict } from '../storage/transactions.js';
import { lockSubjects, recordSightings, retractCaptureSightings } from './analytics/index.js';
import { awardPerk, type PerkOptions } from './perks.js';

const RESULTS_ATTEMPTS = 8;

/** `faces` may carry their embedding (base64) and `pack` the pack that made it: kept with matched faces. */
export type CaptureResults = { captureId: string; run: number; faces: (CapturedFace & { embedding?: string })[]; matches: FaceMatch[]; pack?: string };

/**
 * The capture as locked and the matches recorded (a subject erased meanwhile loses its match);
 * `alreadySaved`: a redelivered job found its run's results written before.
 */
export type SavedResults = { capture: CaptureRow; matches: FaceMatch[]; alreadySaved: boolean };

export class ResultsService {
  constructor(
    private readonly db: Knex,
    private readonly lifecycle: CaptureLifecycle,
    private readonly options: { visitGapMinutes: number; perks: PerkOptions },
  ) {}

  /** Saves the results once; undefined when the run is superseded or the capture already final (a redelivered job). */
  save(results: CaptureResults): Promise<SavedResults | undefined> {
    return retryOnLockConflict(
      () => this.db.transaction((trx) => this.write(trx, results)),
      RESULTS_ATTEMPTS,
      (attempt) => Math.random() * 10 * attempt,
    );
  }

  private async write(trx: Knex.Transaction, { captureId, run, faces, matches, pack }: CaptureResults): Promise<SavedResults | undefined> {
    const locked = await this.lifecycle.lockForResults(trx, captureId, run);
    if (!locked) return undefined;
    const { capture } = locked;
    if (locked.state === 'done') return { capture, matches: await recordedMatches(trx, captureId), alreadySaved: true };

    // Only a restarted or reprocessed capture (run > 0) can have results of an earlier run to replace.
    const replacing = run > 0;
    const earlier = replacing ? await earlierSubjects(trx, captureId) : [];
    const matched = matches.map((match) => ({ merchantId: capture.merchant_id, subjectKind: match.kind, subjectId: match.subjectId }));
    const { existing, analytics } = await lockSubjects(trx, [...earlier, ...matched]);
    // A person erased or a visitor purged since the match stage: the face stays, unmatched.
    const kept = matches.filter((match) => existing.has(match.subjectId));

    if (earlier.length > 0) await retractCaptureSightings(trx, captureId, { visitGapMinutes: this.options.visitGapMinutes });
    const sightings = kept.map((match) => sightingOf(capture, match, faces[match.faceIndex]));
    // The analytics writes are held, to go out in one round trip with the capture's rows and its
    // move to done; analytics and perks read none of those rows (a sighting comes with its age and
    // gender). A retraction moved the subjects' first visits since lockSubjects read them: they are
    // read again then.
    const held = new HeldWrites(trx);
    await recordSightings(trx, sightings, { visitGapMinutes: this.options.visitGapMinutes }, { locked: earlier.length > 0 ? undefined : analytics, held });
    for (const sighting of sightings) {
      if (sighting.subjectKind !== 'member') continue;
      const { subjectId: personId, storeId, faceIndex, seenAt } = sighting;
      await awardPerk(trx, { personId, storeId, captureId, faceIndex, seenAt }, this.options.perks);
    }
    await held.flush(
      ...writeFaces(trx, captureId, faces, new Map(kept.map((match) => [match.faceIndex, match])), { replacing, pack }),
      ...insertSightings(trx, captureId, sightings),
      ...touchSubjects(trx, sightings, capture.captured_at),
      this.lifecycle.finish(trx, captureId, faces.length),
    );
    return { capture, matches: kept, alreadySaved: false };
  }
}

function sightingOf(capture: CaptureRow, match: FaceMatch, face: CapturedFace | undefined): SightingRecord {
  return {
    faceId: faceIdOf(capture.id, match.faceIndex),
    faceIndex: match.faceIndex,
    storeId: capture.store_id,
    merchantId: capture.merchant_id,
    subjectKind: match.kind,
    subjectId: match.subjectId,
    seenAt: capture.captured_at,
    // As stored, not as the vision stage computed it: a rebuild or a reassignment of these
    // sightings reads the stored value and must find the same visits.
    age: face ? storedAge(face.age) : null,
    gender: face?.gender ?? null,
  };
}
