import type { Knex } from 'knex';

/**
 * The merchant-wide counterpart of analytics_span_days (issue 17): per merchant, UTC day and
 * subject kind, how many subjects' first visit at the merchant (analytics_subjects.first_visit_at)
 * and last (last_visit_at) start that day, so the merchant summary's distinct subjects and members
 * are sums of these rows plus a day's subjects, not a count over every subject of the merchant.
 * Kept by refreshSpans by deltas, recounted by the rebuild; filled here.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('analytics_merchant_span_days', (t) => {
    t.specificType('merchant_id', 'CHAR(36)').notNullable().references('merchants.id').onDelete('CASCADE');
    t.date('utc_day').notNullable();
    t.enum('subject_kind', ['member', 'visitor']).notNullable();
    t.integer('firsts').notNullable().defaultTo(0);
    t.integer('lasts').notNullable().defaultTo(0);
    t.primary(['merchant_id', 'utc_day', 'subject_kind']);
  });
  await knex.schema.alterTable('analytics_subjects', (t) => {
    t.index(['merchant_id', 'last_visit_at', 'first_visit_at', 'subject_kind'], 'analytics_subjects_last');
  });
  await knex.raw(
    `INSERT INTO analytics_merchant_span_days (merchant_id, utc_day, subject_kind, firsts, lasts)
     SELECT merchant_id, utc_day, subject_kind, SUM(f), SUM(l) FROM (
       SELECT merchant_id, DATE(first_visit_at) AS utc_day, subject_kind, 1 AS f, 0 AS l FROM analytics_subjects WHERE first_visit_at IS NOT NULL
       UNION ALL
       SELECT merchant_id, DATE(last_visit_at), subject_kind, 0, 1 FROM analytics_subjects WHERE last_visit_at IS NOT NULL) x
     GROUP BY merchant_id, utc_day, subject_kind`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('analytics_subjects', (t) => {
    t.dropIndex([], 'analytics_subjects_last');
  });
  await knex.schema.dropTableIfExists('analytics_merchant_span_days');
}
