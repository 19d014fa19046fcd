import type { Knex } from 'knex';

/**
 * Points spent by members. With perk_awards they make one history: a member's balance
 * (people.points) changes only in the transaction that writes an award or a redemption, with the
 * person row locked, so it always equals awards minus redemptions. A redemption is recorded once
 * per (person, idempotency key); balance_after lets a retried request be answered as the first was.
 * Who redeemed is in the audit trail (audit_entries).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('point_redemptions', (t) => {
    t.specificType('id', 'CHAR(36)').primary();
    t.specificType('person_id', 'CHAR(36)').notNullable().references('people.id').onDelete('CASCADE');
    t.integer('points').unsigned().notNullable();
    t.string('reason', 200).notNullable();
    t.string('idempotency_key', 100).notNullable();
    t.integer('balance_after').unsigned().notNullable();
    t.specificType('redeemed_at', 'DATETIME(3)').notNullable();
    t.unique(['person_id', 'idempotency_key']);
    t.index(['person_id', 'redeemed_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('point_redemptions');
}
