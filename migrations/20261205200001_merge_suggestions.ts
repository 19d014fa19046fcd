import type { Knex } from 'knex';

/**
 * Suggested merges (issue 16): a visitor and another visitor or a member whose vectors came close
 * to, but under, the match threshold. The match stage writes them when it creates a visitor; the
 * API lists them best first and the merchant dismisses them (dismissed_at: never suggested again).
 * Each side is a foreign key that cascades, so a pair goes with either side (erasure, retention
 * purge, merge). `other_id` names the second side whatever its kind, for the pair's unique key
 * (MariaDB refuses a generated column over CHAR columns, so a CHECK keeps it equal to its side).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('merge_suggestions', (t) => {
    t.specificType('id', 'CHAR(36)').primary();
    t.specificType('merchant_id', 'CHAR(36)').notNullable().references('merchants.id').onDelete('CASCADE');
    t.specificType('visitor_id', 'CHAR(36)').notNullable().references('visitors.id').onDelete('CASCADE');
    t.enum('other_kind', ['member', 'visitor']).notNullable();
    t.specificType('other_visitor_id', 'CHAR(36)').nullable().references('visitors.id').onDelete('CASCADE');
    t.specificType('person_id', 'CHAR(36)').nullable().references('people.id').onDelete('CASCADE');
    t.specificType('other_id', 'CHAR(36)').notNullable();
    t.double('similarity').notNullable();
    t.specificType('created_at', 'DATETIME(3)').notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.specificType('dismissed_at', 'DATETIME(3)').nullable();
    t.unique(['visitor_id', 'other_id'], { indexName: 'merge_suggestions_pair' });
    t.index(['merchant_id', 'dismissed_at', 'similarity', 'id'], 'merge_suggestions_best');
  });
  await knex.raw(
    `ALTER TABLE merge_suggestions ADD CONSTRAINT merge_suggestions_other
     CHECK (IF(other_kind = 'visitor', other_visitor_id <=> other_id AND person_id IS NULL, person_id <=> other_id AND other_visitor_id IS NULL))`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('merge_suggestions');
}
