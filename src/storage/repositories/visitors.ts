/** Anonymous visitors' rows, as the match stage creates them. */
import type { Knex } from 'knex';
import { withNamedLock } from '../named-lock.js';

/** How long a match job waits for another one creating visitors at the same merchant. */
const VISITOR_LOCK_WAIT_SECONDS = 30;

export class VisitorRepository {
  constructor(private readonly db: Knex) {}

  /**
   * Runs `create` holding a per-merchant MySQL named lock, so two match workers cannot both decide
   * that one new face needs a new visitor: the second waits, searches again, and finds the first's.
   */
  async withVisitorLock<T>(merchantId: string, create: () => Promise<T>): Promise<T> {
    const name = `faceperks:visitors:${merchantId}`;
    const outcome = await withNamedLock(this.db, name, VISITOR_LOCK_WAIT_SECONDS, create);
    if (!outcome.acquired) throw new Error(`timed out waiting for ${name}`);
    return outcome.value;
  }

  async createVisitors(ids: string[], merchantId: string, seenAt: Date): Promise<void> {
    await this.db('visitors')
      .insert(ids.map((id) => ({ id, merchant_id: merchantId, first_seen_at: seenAt, last_seen_at: seenAt })))
      .onConflict('id')
      .ignore();
  }

  async existingVisitors(ids: string[]): Promise<Set<string>> {
    const rows: { id: string }[] = await this.db('visitors').whereIn('id', ids).select('id');
    return new Set(rows.map((row) => row.id));
  }
}
