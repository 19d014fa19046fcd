/**
 * A capture's states and their legal moves; the only code that changes `captures.status`, `run`
 * and `stage` after intake inserts a capture as `queued`:
 *
 *   queued ──begin──▶ processing ──finish──▶ done     (finishFaceless: a first run with no face)
 *     ▲                  │ └────────fail────▶ failed   (bad input only)
 *     └────restart───────┘   (run + 1; from done or failed too when reprocessing)
 *
 * Every move names the run it belongs to: a job of a superseded run changes nothing.
 */
import type { Knex } from 'knex';
import type { Stage } from '../queue/contract.js';
import { sendTogether, type WriteResult } from './transactions.js';

export const CAPTURE_STATES = ['queued', 'processing', 'done', 'failed'] as const;
export type CaptureState = (typeof CAPTURE_STATES)[number];
export const OPEN_STATES = ['queued', 'processing'] as const satisfies readonly CaptureState[];
export const FINAL_STATES = ['done', 'failed'] as const satisfies readonly CaptureState[];
export const INITIAL_STATE = { status: 'queued', stage: 'preprocess', run: 0 } as const;

export function isOpen(status: string): status is (typeof OPEN_STATES)[number] {
  return (OPEN_STATES as readonly string[]).includes(status);
}

export type CaptureRow = {
  id: string;
  batch_id: string;
  device_id: string;
  store_id: string;
  merchant_id: string;
  blob_key: string;
  /** From the image header at intake: vision corrects them if decoding says otherwise. */
  width: number | null;
  height: number | null;
  status: CaptureState;
  stage: Stage;
  run: number;
  captured_at: Date;
  captured_at_source: 'device' | 'exif' | 'receipt';
  updated_at: Date;
};

export type StartedCapture = CaptureRow & { keep_face_crops: boolean };

const now = (db: Knex) => db.raw('CURRENT_TIMESTAMP(3)');

export class CaptureLifecycle {
  constructor(private readonly db: Knex) {}

  /**
   * queued|processing → processing at `stage`; the capture row, or undefined when the run is
   * superseded or final. With it, in the same read, whether its merchant keeps face crops: the
   * vision stage, which begins a capture, cuts them with the pixels.
   */
  async begin(captureId: string, run: number, stage: Stage): Promise<StartedCapture | undefined> {
    const [moved, rows] = (await sendTogether(this.db, [
      this.db('captures').where({ id: captureId, run }).whereIn('status', OPEN_STATES).update({ status: 'processing', stage, updated_at: now(this.db) }),
      this.db('captures').join('merchants', 'merchants.id', 'captures.merchant_id').where('captures.id', captureId).select('captures.*', 'merchants.keep_face_crops'),
    ])) as [WriteResult, (CaptureRow & { keep_face_crops: number })[]];
    if (moved.affectedRows === 0 || rows.length === 0) return undefined;
    return { ...rows[0], keep_face_crops: Boolean(rows[0].keep_face_crops) };
  }

  /** Records that an open capture's run reached `stage`; false when the run is superseded or final. */
  async advance(captureId: string, run: number, stage: Stage): Promise<boolean> {
    const moved = await this.db('captures').where({ id: captureId, run }).whereIn('status', OPEN_STATES).update({ stage, updated_at: now(this.db) });
    return moved > 0;
  }

  /** open → failed, for bad input: `code` names the reason. */
  async fail(captureId: string, run: number, code: string, message: string): Promise<void> {
    await this.db('captures')
      .where({ id: captureId, run })
      .whereIn('status', OPEN_STATES)
      .update({ status: 'failed', error_code: code, error_message: message.slice(0, 480), updated_at: now(this.db) });
  }

  /**
   * open → done for a first run (run 0: no earlier results to replace) that found no face: with
   * nothing to match or write, the vision stage ends it here. Done at the aggregate stage, as every
   * finished capture. False when the run is superseded or already final.
   */
  async finishFaceless(captureId: string, run: 0): Promise<boolean> {
    const moved = await this.db('captures')
      .where({ id: captureId, run })
      .whereIn('status', OPEN_STATES)
      .update({ status: 'done', stage: 'aggregate', face_count: 0, error_code: null, error_message: null, updated_at: now(this.db) });
    return moved > 0;
  }

  /**
   * Locks the capture row for the results transaction: `open` when this run may write its results,
   * `done` when this run already did (a redelivered job), undefined when the run is superseded or failed.
   */
  async lockForResults(trx: Knex.Transaction, captureId: string, run: number): Promise<{ capture: CaptureRow; state: 'open' | 'done' } | undefined> {
    const capture = await trx<CaptureRow>('captures').where({ id: captureId }).forUpdate().first();
    if (!capture || capture.run !== run) return undefined;
    if (isOpen(capture.status)) return { capture, state: 'open' };
    return capture.status === 'done' ? { capture, state: 'done' } : undefined;
  }

  /** The statement moving open → done, for the results transaction that locked the row to send with its last writes. */
  finish(trx: Knex.Transaction, captureId: string, faceCount: number): Knex.QueryBuilder {
    return trx('captures')
      .where({ id: captureId })
      .update({ status: 'done', stage: 'aggregate', face_count: faceCount, error_code: null, error_message: null, updated_at: now(trx) });
  }

  /**
   * → queued under run + 1, from the start. The compare-and-set on `run` makes two concurrent
   * restarters (sweeper, reprocess) win once; jobs of the older run then change nothing.
   * `onlyIfOpen`: the sweeper's restart of a stuck capture, never of a finished one.
   */
  async restart(capture: { id: string; run: number }, options: { onlyIfOpen: boolean }): Promise<number | undefined> {
    const claim = this.db('captures').where({ id: capture.id, run: capture.run });
    if (options.onlyIfOpen) claim.whereIn('status', OPEN_STATES);
    const run = capture.run + 1;
    const claimed = await claim.update({ ...INITIAL_STATE, run, error_code: null, error_message: null, updated_at: now(this.db) });
    return claimed === 0 ? undefined : run;
  }

  /**
   * Takes back an upload whose images could not be stored (it answered 503/507, so the client
   * resends): its batch and the captures it recorded go, as long as none has started. Left in
   * place, a capture would wait for an image that only a resend brings, and fail without one.
   */
  async withdrawUpload(batchId: string): Promise<void> {
    await this.db.transaction(async (trx) => {
      await trx('captures').where({ batch_id: batchId, run: INITIAL_STATE.run, status: INITIAL_STATE.status }).delete();
      await trx('batches').where('id', batchId).whereNotExists(trx('captures').where('batch_id', batchId).select(trx.raw('1'))).delete();
    });
  }
}
