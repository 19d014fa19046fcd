import type { Knex } from 'knex';

/**
 * Service-wide settings that outlive a process and must be the same for every worker, such as the
 * active model pack (switched by a reembed job once the new pack's collections are complete).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('service_settings', (t) => {
    t.string('name', 64).primary();
    t.text('value').notNullable();
    t.specificType('updated_at', 'DATETIME(3)').notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('service_settings');
}
