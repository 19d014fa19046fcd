/** Statements sent together in one multi-statement round trip, against the real MariaDB. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeldWrites, sendTogether, withHeldWrites, writeTogether, type WriteResult } from '../../src/storage/transactions.js';
import { createTestEnvironment, type TestEnvironment } from '../support/services.js';

let env: TestEnvironment;
const TABLE = 'together_probe';

beforeAll(async () => {
  env = await createTestEnvironment();
  await env.db.schema.createTable(TABLE, (t) => {
    t.integer('id').primary();
    t.string('label');
  });
});
afterAll(async () => {
  await env?.cleanup();
});

const rows = () => env.db(TABLE).orderBy('id').select('id', 'label');

describe('statements sent together', () => {
  it("resolves with each statement's result in order: a write's affected rows, a read's rows", async () => {
    const [inserted, updated, read] = (await sendTogether(env.db, [
      env.db(TABLE).insert([{ id: 1, label: 'one' }, { id: 2, label: 'two' }]),
      env.db(TABLE).where('id', 2).update({ label: 'two, again' }),
      env.db(TABLE).where('id', '>=', 2).select('id', 'label'),
    ])) as [WriteResult, WriteResult, { id: number; label: string }[]];
    expect(inserted.affectedRows).toBe(2);
    expect(updated.affectedRows).toBe(1);
    expect(read.map((row) => ({ ...row }))).toEqual([{ id: 2, label: 'two, again' }]);
    expect(await sendTogether(env.db, [])).toEqual([]);
    const [alone] = (await sendTogether(env.db, [env.db(TABLE).count({ n: '*' })])) as [{ n: number }[]];
    expect(Number(alone[0].n)).toBe(2);
  });

  it('stops at the first failing statement and rejects; inside a transaction nothing stays', async () => {
    await env.db(TABLE).delete();
    const sent = env.db.transaction((trx) =>
      writeTogether(trx, [
        trx(TABLE).insert({ id: 10, label: 'kept until the rollback' }),
        trx(TABLE).insert({ id: 10, label: 'a duplicate key' }),
        trx(TABLE).insert({ id: 11, label: 'never sent' }),
      ]),
    );
    await expect(sent).rejects.toMatchObject({ errno: 1062 });
    expect(await rows()).toEqual([]);
  });

  it('holds writes until a read through it, which sees them, or until the flush', async () => {
    await env.db(TABLE).delete();
    await env.db.transaction(async (trx) => {
      const held = new HeldWrites(trx);
      held.hold(trx(TABLE).insert({ id: 20, label: 'held' }));
      expect(await trx(TABLE).count({ n: '*' })).toEqual([{ n: 0 }]);
      expect((await held.read<{ id: number }>(trx(TABLE).select('id'))).map((row) => row.id)).toEqual([20]);
      held.hold(trx(TABLE).where('id', 20).update({ label: 'held, then flushed' }));
      await held.flush(trx(TABLE).insert({ id: 21, label: 'sent with the flush' }));
    });
    expect((await rows()).map((row) => ({ ...row }))).toEqual([
      { id: 20, label: 'held, then flushed' },
      { id: 21, label: 'sent with the flush' },
    ]);
  });

  it("withHeldWrites leaves the caller's held writes to the caller, and sends its own when the work is done", async () => {
    await env.db(TABLE).delete();
    const callers = new HeldWrites(env.db);
    await withHeldWrites(env.db, callers, async (held) => held.hold(env.db(TABLE).insert({ id: 30, label: "the caller's" })));
    expect(await rows()).toEqual([]);
    await withHeldWrites(env.db, undefined, async (held) => held.hold(env.db(TABLE).insert({ id: 31, label: 'its own' })));
    expect((await rows()).map((row) => row.id)).toEqual([31]);
    await callers.flush();
    expect((await rows()).map((row) => row.id)).toEqual([30, 31]);
  });
});
