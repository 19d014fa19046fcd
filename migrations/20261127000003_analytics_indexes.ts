import type { Knex } from 'knex';

/**
 * Covering indexes for the read side: distinct subjects, visit frequency and median visit length
 * over a range read only the index (no row lookups), per store and per merchant. They replace the
 * plain (store_id, started_at) and (merchant_id, started_at) indexes, which are their prefixes.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('visits', (t) => {
    t.index(['store_id', 'started_at', 'subject_id', 'subject_kind', 'ended_at'], 'visits_store_range_covering');
    t.index(['merchant_id', 'started_at', 'subject_id', 'subject_kind'], 'visits_merchant_range_covering');
  });
  await knex.schema.alterTable('visits', (t) => {
    t.dropIndex(['store_id', 'started_at']);
    t.dropIndex(['merchant_id', 'started_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('visits', (t) => {
    t.index(['store_id', 'started_at']);
    t.index(['merchant_id', 'started_at']);
  });
  await knex.schema.alterTable('visits', (t) => {
    t.dropIndex([], 'visits_store_range_covering');
    t.dropIndex([], 'visits_merchant_range_covering');
  });
}
