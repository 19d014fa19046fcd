import type { Knex } from 'knex';

/**
 * Runs `work` holding MySQL's named lock `name` (GET_LOCK, on one pooled connection for the
 * duration), waiting up to `waitSeconds` for it; `{ acquired: false }` without running it when
 * another session held it all that time.
 */
export async function withNamedLock<T>(db: Knex, name: string, waitSeconds: number, work: () => Promise<T>): Promise<{ acquired: true; value: T } | { acquired: false }> {
  const connection = await db.client.acquireConnection();
  try {
    const [rows] = await connection.promise().query('SELECT GET_LOCK(?, ?) AS ok', [name, waitSeconds]);
    if ((rows as { ok: number | null }[])[0]?.ok !== 1) return { acquired: false };
    try {
      return { acquired: true, value: await work() };
    } finally {
      await connection.promise().query('SELECT RELEASE_LOCK(?)', [name]);
    }
  } finally {
    await db.client.releaseConnection(connection);
  }
}
