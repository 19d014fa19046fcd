import type { Knex } from 'knex';

/**
 * "Not this person" (issue 16): a merchant rejects a face's match.
 * - faces.embedding (+ embedding_pack): the embedding of each face the pipeline matched, kept with
 *   the face so a rejected face can become a visitor with its own vector. It is cleared with its
 *   subject (erasure, visitor purge) and goes with the face (reprocess, capture deletion).
 * - rejected_matches: a rejected pairing, with a copy of the face's embedding, so the match stage
 *   refuses that subject to a later face closer to the rejected face than to the subject's own.
 * - perk_reversals: the perk awarded for a rejected member match taken back, a line of the ledger.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('faces', (t) => {
    t.specificType('embedding', 'BLOB').nullable();
    t.string('embedding_pack', 32).nullable();
  });
  await knex.schema.createTable('rejected_matches', (t) => {
    t.bigIncrements('id').primary();
    t.specificType('merchant_id', 'CHAR(36)').notNullable().references('merchants.id').onDelete('CASCADE');
    t.enum('subject_kind', ['member', 'visitor']).notNullable();
    t.specificType('subject_id', 'CHAR(36)').notNullable();
    t.specificType('face_id', 'CHAR(36)').notNullable();
    t.string('pack', 32).notNullable();
    t.specificType('embedding', 'BLOB').notNullable();
    t.specificType('created_at', 'DATETIME(3)').notNullable().defaultTo(knex.raw('CURRENT_TIMESTAMP(3)'));
    t.index(['merchant_id', 'subject_id']);
  });
  await knex.schema.createTable('perk_reversals', (t) => {
    t.specificType('id', 'CHAR(36)').primary();
    t.specificType('award_id', 'CHAR(36)').notNullable().unique().references('perk_awards.id').onDelete('CASCADE');
    t.specificType('person_id', 'CHAR(36)').notNullable().references('people.id').onDelete('CASCADE');
    t.integer('points').unsigned().notNullable();
    t.specificType('reversed_at', 'DATETIME(3)').notNullable();
    t.index(['person_id', 'reversed_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('perk_reversals');
  await knex.schema.dropTableIfExists('rejected_matches');
  await knex.schema.alterTable('faces', (t) => {
    t.dropColumn('embedding');
    t.dropColumn('embedding_pack');
  });
}
