import type { Knex } from 'knex';

/**
 * Per-subject spans, so that distinct counts over a range need not scan visits (issue 17).
 *
 * - `analytics_store_subjects`: one row per subject seen at a store: the starts of its first and
 *   last visit there and its number of visits there. A subject has a visit starting in [lo, hi)
 *   for sure when its first or last visit start lies in the range, for sure not when its span
 *   misses the range; only a span that strictly contains the range needs a look at its visits.
 * - `analytics_subjects.last_visit_at`: the start of the subject's last visit at the merchant,
 *   the same span merchant-wide (first_visit_at is already there).
 *
 * Both are recomputed from `visits` for every subject whose visits a transaction changes (see
 * src/services/analytics/spans.ts); this migration fills them from the visits already recorded.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('analytics_store_subjects', (t) => {
    t.specificType('store_id', 'CHAR(36)').notNullable().references('stores.id').onDelete('CASCADE');
    t.specificType('subject_id', 'CHAR(36)').notNullable();
    t.specificType('merchant_id', 'CHAR(36)').notNullable();
    t.enum('subject_kind', ['member', 'visitor']).notNullable();
    t.specificType('first_visit_at', 'DATETIME(3)').notNullable();
    t.specificType('last_visit_at', 'DATETIME(3)').notNullable();
    t.integer('visits').unsigned().notNullable();
    t.primary(['store_id', 'subject_id']);
    t.index(['store_id', 'last_visit_at', 'first_visit_at', 'subject_kind', 'visits'], 'store_subjects_span');
    t.index(['merchant_id', 'subject_id'], 'store_subjects_merchant');
  });
  await knex.raw(
    `INSERT INTO analytics_store_subjects (store_id, subject_id, merchant_id, subject_kind, first_visit_at, last_visit_at, visits)
     SELECT store_id, subject_id, merchant_id, subject_kind, MIN(started_at), MAX(started_at), COUNT(*)
     FROM visits GROUP BY store_id, subject_id, merchant_id, subject_kind`,
  );
  await knex.schema.alterTable('analytics_subjects', (t) => {
    t.specificType('last_visit_at', 'DATETIME(3)').nullable();
    t.index(['merchant_id', 'first_visit_at', 'last_visit_at', 'subject_kind'], 'analytics_subjects_span');
  });
  await knex.raw(
    `UPDATE analytics_subjects a
     JOIN (SELECT merchant_id, subject_id, MAX(last_visit_at) AS last_at FROM analytics_store_subjects GROUP BY merchant_id, subject_id) s
       ON s.merchant_id = a.merchant_id AND s.subject_id = a.subject_id
     SET a.last_visit_at = s.last_at`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('analytics_subjects', (t) => {
    t.dropIndex([], 'analytics_subjects_span');
    t.dropColumn('last_visit_at');
  });
  await knex.schema.dropTableIfExists('analytics_store_subjects');
}
