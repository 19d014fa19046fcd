import type { Knex } from 'knex';

/**
 * Read path of the analytics API.
 *
 * - `sightings_store_members_recent`: recent member recognitions at a store read only the member
 *   sightings of the range, newest first, from the index (the plain (store_id, seen_at) index made
 *   MySQL either walk every sighting of the range with a row lookup each, or start from `people`
 *   and read every sighting of every member).
 * - `analytics_store_versions`: a counter per store, bumped in the same transaction as any change
 *   to the store's visits or rollups (incremental path, retraction, rebuild). API processes key
 *   their cache of computed answers on it, so a cached answer is never older than the data.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sightings', (t) => {
    t.index(['store_id', 'subject_kind', 'seen_at', 'person_id', 'capture_id'], 'sightings_store_members_recent');
  });
  await knex.schema.createTable('analytics_store_versions', (t) => {
    t.specificType('store_id', 'CHAR(36)').primary().references('stores.id').onDelete('CASCADE');
    t.bigInteger('version').unsigned().notNullable().defaultTo(0);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('analytics_store_versions');
  await knex.schema.alterTable('sightings', (t) => {
    t.dropIndex([], 'sightings_store_members_recent');
  });
}
