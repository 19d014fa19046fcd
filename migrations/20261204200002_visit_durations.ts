import type { Knex } from 'knex';

/**
 * Visit length as a stored column with an index in length order per store (issue 17): the median
 * visit length of a range is the k-th of its visits in that order, read from the index (k = half
 * the range's visits, which the rollups give) instead of sorting every visit of the range.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE visits ADD COLUMN duration_ms BIGINT GENERATED ALWAYS AS (TIMESTAMPDIFF(MICROSECOND, started_at, ended_at) DIV 1000) STORED');
  await knex.schema.alterTable('visits', (t) => {
    t.index(['store_id', 'duration_ms', 'started_at'], 'visits_store_duration');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('visits', (t) => {
    t.dropIndex([], 'visits_store_duration');
    t.dropColumn('duration_ms');
  });
}
