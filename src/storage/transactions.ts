/** Write transactions that InnoDB may abort on a lock conflict: the isolation they use, and their re-run. */
import type { Knex } from 'knex';

/**
 * READ COMMITTED: locking reads and range deletes take no gap locks. The writers that use it lock
 * what they change first (the capture, each subject), so gaps protect nothing there, while gap
 * locks made writers of different subjects or stores deadlock on the boundaries between their keys.
 */
export const READ_COMMITTED: Knex.TransactionConfig = { isolationLevel: 'read committed' };

const ER_LOCK_WAIT_TIMEOUT = 1205;
const ER_LOCK_DEADLOCK = 1213;

/**
 * Runs `transaction` again when InnoDB aborts it for a deadlock or a lock wait timeout, after
 * `pauseMs(attempt)`, at most `attempts` times in all. The transaction must hold nothing outside MySQL.
 */
export async function retryOnLockConflict<T>(transaction: () => Promise<T>, attempts: number, pauseMs: (attempt: number) => number): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transaction();
    } catch (error) {
      const errno = (error as { errno?: number }).errno;
      if (attempt >= attempts || (errno !== ER_LOCK_DEADLOCK && errno !== ER_LOCK_WAIT_TIMEOUT)) throw error;
      await new Promise((resolve) => setTimeout(resolve, pauseMs(attempt)));
    }
  }
}
