import type { Knex } from 'knex';

/**
 * Analytics: visits (sessionised sightings), the first visit of each subject at each merchant
 * (new vs returning; its row is also the per-subject lock the incremental path serialises on),
 * and per-store rollups per local hour and local day.
 *
 * Rollup buckets are keyed by the UTC instant at which the local bucket starts (not by a UTC
 * hour), so zones with 30/45-minute offsets and DST days are exact: see
 * src/services/analytics/time.ts for the bucket rules. local_date/local_hour/local_weekday are
 * denormalised for weekday x hour queries (weekday 0 = Monday).
 */
export async function up(knex: Knex): Promise<void> {
  const uuid = (t: Knex.CreateTableBuilder, name: string) => t.specificType(name, 'CHAR(36)');
  const ms = (t: Knex.CreateTableBuilder, name: string) => t.specificType(name, 'DATETIME(3)');

  await knex.schema.createTable('visits', (t) => {
    t.bigIncrements('id').primary();
    uuid(t, 'store_id').notNullable().references('stores.id').onDelete('CASCADE');
    uuid(t, 'merchant_id').notNullable();
    t.enum('subject_kind', ['member', 'visitor']).notNullable();
    uuid(t, 'subject_id').notNullable();
    ms(t, 'started_at').notNullable();
    ms(t, 'ended_at').notNullable();
    t.integer('sightings').unsigned().notNullable();
    t.bigInteger('age_milli_sum').notNullable().defaultTo(0);
    t.integer('age_count').unsigned().notNullable().defaultTo(0);
    t.integer('male_count').unsigned().notNullable().defaultTo(0);
    t.integer('female_count').unsigned().notNullable().defaultTo(0);
    t.unique(['store_id', 'subject_id', 'started_at']);
    t.index(['store_id', 'started_at']);
    t.index(['merchant_id', 'subject_id', 'started_at']);
    t.index(['merchant_id', 'started_at']);
  });

  await knex.schema.createTable('analytics_subjects', (t) => {
    uuid(t, 'merchant_id').notNullable().references('merchants.id').onDelete('CASCADE');
    uuid(t, 'subject_id').notNullable();
    t.enum('subject_kind', ['member', 'visitor']).notNullable();
    ms(t, 'first_visit_at').nullable();
    uuid(t, 'first_visit_store_id').nullable();
    t.primary(['merchant_id', 'subject_id']);
  });

  await knex.schema.createTable('analytics_rollups', (t) => {
    uuid(t, 'store_id').notNullable().references('stores.id').onDelete('CASCADE');
    t.enum('granularity', ['hour', 'day']).notNullable();
    ms(t, 'bucket_start').notNullable();
    t.date('local_date').notNullable();
    t.tinyint('local_hour').unsigned().notNullable();
    t.tinyint('local_weekday').unsigned().notNullable();
    for (const column of [
      'visits', 'unique_subjects', 'member_visits', 'visitor_visits', 'new_visitors', 'returning_visitors',
      'sightings', 'male_visits', 'female_visits', 'unknown_gender_visits',
      'age_0_17', 'age_18_24', 'age_25_34', 'age_35_44', 'age_45_54', 'age_55_64', 'age_65_plus', 'age_unknown',
    ]) {
      t.integer(column).notNullable().defaultTo(0);
    }
    t.bigInteger('duration_ms_sum').notNullable().defaultTo(0);
    t.primary(['store_id', 'granularity', 'bucket_start']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['analytics_rollups', 'analytics_subjects', 'visits']) await knex.schema.dropTableIfExists(table);
}
