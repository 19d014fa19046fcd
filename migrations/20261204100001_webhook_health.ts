import type { Knex } from 'knex';

/** How deliveries to a merchant's webhook are going: the circuit breaker's state, shown to the merchant. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('merchant_webhooks', (t) => {
    t.integer('consecutive_failures').unsigned().notNullable().defaultTo(0);
    t.string('last_error', 500).nullable();
    t.specificType('last_error_at', 'DATETIME(3)').nullable();
    t.specificType('paused_until', 'DATETIME(3)').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('merchant_webhooks', (t) => {
    t.dropColumn('consecutive_failures');
    t.dropColumn('last_error');
    t.dropColumn('last_error_at');
    t.dropColumn('paused_until');
  });
}
