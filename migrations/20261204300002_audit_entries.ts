import type { Knex } from 'knex';

/**
 * Who changed a member's identity or points, when, and what: one row per change, written in the
 * transaction of the change. Rows name subjects by id without foreign keys, so the trail of an
 * erased member stays; details hold ids and field names, never a name or an external id.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_entries', (t) => {
    t.bigIncrements('id').primary();
    t.specificType('merchant_id', 'CHAR(36)').notNullable().references('merchants.id').onDelete('CASCADE');
    t.specificType('actor_key_id', 'CHAR(36)').notNullable();
    t.enum('actor_role', ['admin', 'merchant', 'device']).notNullable();
    t.string('action', 40).notNullable();
    t.enum('subject_kind', ['member', 'visitor']).notNullable();
    t.specificType('subject_id', 'CHAR(36)').notNullable();
    t.text('details', 'longtext').notNullable();
    t.specificType('created_at', 'DATETIME(3)').notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.index(['merchant_id', 'id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('audit_entries');
}
