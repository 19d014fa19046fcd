import type { Knex } from 'knex';

/** One webhook per merchant: where recognitions are POSTed, and the secret that signs them. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('merchant_webhooks', (t) => {
    t.specificType('merchant_id', 'CHAR(36)').primary().references('merchants.id').onDelete('CASCADE');
    t.string('url', 2000).notNullable();
    t.string('secret', 128).notNullable();
    t.specificType('updated_at', 'DATETIME(3)').notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('merchant_webhooks');
}
