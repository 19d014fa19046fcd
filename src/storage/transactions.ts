/**
 * Write transactions that InnoDB may abort on a lock conflict, and their re-run; writes sent
 * together. (Their isolation: storage/db.ts.)
 */
import type { Knex } from 'knex';

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

export type Statement = Knex.QueryBuilder | Knex.Raw;

/**
 * Sends the statements as one multi-statement query, in order, and resolves with each one's result:
 * a read's rows, a write's result header (`affectedRows`). One round trip instead of one each: a
 * round trip costs far more than a statement on a virtual machine (on the CI machine 0.07-0.26 ms
 * of client CPU, against 0.02-0.03 ms per statement sent five at a time: `npm run bench:round-trips`).
 * The first statement that fails stops the rest and rejects.
 */
export async function sendTogether(db: Knex | Knex.Transaction, statements: Statement[]): Promise<unknown[]> {
  const native = statements.map((statement) => statement.toSQL().toNative());
  if (native.length === 0) return [];
  const [results] = (await db.raw(native.map((statement) => statement.sql).join(';\n'), native.flatMap((statement) => statement.bindings) as Knex.RawBinding[])) as [unknown];
  return native.length === 1 ? [results] : (results as unknown[]);
}

/** Statements whose results nobody reads, sent in one round trip (sendTogether). */
export async function writeTogether(db: Knex | Knex.Transaction, statements: Statement[]): Promise<void> {
  await sendTogether(db, statements);
}

/**
 * A transaction's writes held back to go out in one round trip with its next read made through
 * `read` (ahead of it), or with `flush`. Whoever creates it flushes it; a read that must see the
 * held writes goes through `read`.
 */
export class HeldWrites {
  private held: Statement[] = [];

  constructor(private readonly db: Knex | Knex.Transaction) {}

  hold(...statements: Statement[]): void {
    this.held.push(...statements);
  }

  async read<Row>(query: Knex.QueryBuilder): Promise<Row[]> {
    return (await sendTogether(this.db, [...this.take(), query])).at(-1) as Row[];
  }

  /** Sends the held writes, then `more`. */
  flush(...more: Statement[]): Promise<void> {
    return writeTogether(this.db, [...this.take(), ...more]);
  }

  private take(): Statement[] {
    const taken = this.held;
    this.held = [];
    return taken;
  }
}

/**
 * Runs `work` with the caller's held writes, which the caller flushes; without them, with writes of
 * its own, sent when `work` is done.
 */
export async function withHeldWrites(db: Knex | Knex.Transaction, callersWrites: HeldWrites | undefined, work: (held: HeldWrites) => Promise<void>): Promise<void> {
  if (callersWrites) return work(callersWrites);
  const held = new HeldWrites(db);
  await work(held);
  await held.flush();
}

/** A write's result header, as sendTogether resolves it. */
export type WriteResult = { affectedRows: number };
