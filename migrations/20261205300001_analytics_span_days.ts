import type { Knex } from 'knex';

/**
 * Per store, UTC day and subject kind: how many of the store's subject spans
 * (analytics_store_subjects) start on that day (`firsts`: the subject's first visit there) and end
 * on it (`lasts`: its last visit there) (issue 17). The subjects with a visit in [lo, hi) are those
 * whose span meets the range, #(first < hi) - #(last < lo), less the spans that strictly contain
 * it without a visit inside: sums of these rows plus two days' span rows instead of every span.
 *
 * Kept by refreshSpans (src/services/analytics/spans.ts) with the spans, by deltas, and recomputed
 * from the spans by the rebuild; this migration fills it from the spans already recorded.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('analytics_span_days', (t) => {
    t.specificType('store_id', 'CHAR(36)').notNullable().references('stores.id').onDelete('CASCADE');
    t.date('utc_day').notNullable();
    t.enum('subject_kind', ['member', 'visitor']).notNullable();
    t.integer('firsts').notNullable().defaultTo(0);
    t.integer('lasts').notNullable().defaultTo(0);
    t.primary(['store_id', 'utc_day', 'subject_kind']);
  });
  await knex.schema.alterTable('analytics_store_subjects', (t) => {
    t.index(['store_id', 'first_visit_at', 'subject_kind'], 'store_subjects_first');
  });
  await knex.raw(
    `INSERT INTO analytics_span_days (store_id, utc_day, subject_kind, firsts, lasts)
     SELECT store_id, utc_day, subject_kind, SUM(f), SUM(l) FROM (
       SELECT store_id, DATE(first_visit_at) AS utc_day, subject_kind, 1 AS f, 0 AS l FROM analytics_store_subjects
       UNION ALL
       SELECT store_id, DATE(last_visit_at), subject_kind, 0, 1 FROM analytics_store_subjects) x
     GROUP BY store_id, utc_day, subject_kind`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('analytics_store_subjects', (t) => {
    t.dropIndex([], 'store_subjects_first');
  });
  await knex.schema.dropTableIfExists('analytics_span_days');
}
