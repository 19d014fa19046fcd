import type { Knex } from 'knex';

/** Keys an operator can tell apart and retire (a label, an optional expiry, when last used), and devices that can be removed. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('api_keys', (t) => {
    t.string('label', 100).nullable();
    t.specificType('expires_at', 'DATETIME(3)').nullable();
    t.specificType('last_used_at', 'DATETIME(3)').nullable();
    t.index(['merchant_id', 'created_at']);
  });
  await knex.schema.alterTable('devices', (t) => {
    t.specificType('deleted_at', 'DATETIME(3)').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('api_keys', (t) => {
    t.dropIndex(['merchant_id', 'created_at']);
    t.dropColumn('label');
    t.dropColumn('expires_at');
    t.dropColumn('last_used_at');
  });
  await knex.schema.alterTable('devices', (t) => {
    t.dropColumn('deleted_at');
  });
}
