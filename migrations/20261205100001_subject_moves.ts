import type { Knex } from 'knex';

/**
 * Identity changes that move sightings between subjects (issue 16): merging two visitors, linking
 * a visitor to a member, rejecting a face's match. One row per change, keyed by its audit entry,
 * holds what an undo needs to put everything back: the faces (sightings) moved, the gallery vectors
 * moved, the perks awarded for the past, and the seen times the change overwrote. `vectors_moved_at`
 * is set once the gallery side is done (it runs after the SQL commit; a retried request finishes
 * it); `undone_by` names the undo's audit entry.
 *
 * A merged or linked-away visitor keeps its row (an undo brings it back under the same id), marked
 * with where it went; lists and lookups skip it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('visitors', (t) => {
    t.enum('merged_into_kind', ['member', 'visitor']).nullable();
    t.specificType('merged_into_id', 'CHAR(36)').nullable();
  });
  await knex.schema.createTable('subject_moves', (t) => {
    t.bigInteger('audit_id').unsigned().primary();
    t.specificType('merchant_id', 'CHAR(36)').notNullable().references('merchants.id').onDelete('CASCADE');
    t.enum('kind', ['merge', 'link', 'reject']).notNullable();
    t.enum('from_kind', ['member', 'visitor']).notNullable();
    t.specificType('from_id', 'CHAR(36)').notNullable();
    t.enum('to_kind', ['member', 'visitor']).notNullable();
    t.specificType('to_id', 'CHAR(36)').notNullable();
    t.text('face_ids', 'longtext').notNullable();
    t.text('vector_ids', 'longtext').notNullable();
    t.text('award_ids', 'longtext').notNullable();
    t.text('seen_before', 'longtext').notNullable();
    t.specificType('vectors_moved_at', 'DATETIME(3)').nullable();
    t.bigInteger('undone_by').unsigned().nullable();
    t.index(['merchant_id', 'from_id']);
    t.index(['merchant_id', 'to_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('subject_moves');
  await knex.schema.alterTable('visitors', (t) => {
    t.dropColumn('merged_into_kind');
    t.dropColumn('merged_into_id');
  });
}
