import type { Knex } from 'knex';

/** Retention asks, per stored image, whether any capture still needs it. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('captures', (t) => {
    t.index(['blob_key', 'status']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('captures', (t) => {
    t.dropIndex(['blob_key', 'status']);
  });
}
