import type { Knex } from 'knex';

/** Retention bookkeeping: when a capture's stored image was deleted after processing. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('captures', (t) => {
    t.specificType('image_deleted_at', 'DATETIME(3)').nullable();
    t.index(['status', 'image_deleted_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('captures', (t) => {
    t.dropIndex(['status', 'image_deleted_at']);
    t.dropColumn('image_deleted_at');
  });
}
