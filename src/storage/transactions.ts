/** Write transactions that InnoDB may abort on a lock conflict, and their re-run. (Their isolation: storage/db.ts.) */

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
