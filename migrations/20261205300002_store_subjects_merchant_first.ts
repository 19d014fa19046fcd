import type { Knex } from 'knex';

/**
 * The subject's first visit at the merchant on each of its store spans (issue 17), so that the
 * visitors endpoint tells returning visitors (first visit at the merchant before the range) from
 * the store's span rows alone, read from one covering index, instead of looking up every visitor's
 * merchant-wide row. Set by refreshSpans for every store row of each subject it refreshes (a first
 * visit moves only when the subject's visits change, which refreshes it); filled here.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('analytics_store_subjects', (t) => {
    t.specificType('merchant_first_visit_at', 'DATETIME(3)').nullable();
  });
  await knex.raw(
    `UPDATE analytics_store_subjects s JOIN analytics_subjects a ON a.merchant_id = s.merchant_id AND a.subject_id = s.subject_id
     SET s.merchant_first_visit_at = a.first_visit_at`,
  );
  await knex.schema.alterTable('analytics_store_subjects', (t) => {
    t.dropIndex([], 'store_subjects_span');
    t.index(['store_id', 'last_visit_at', 'first_visit_at', 'subject_kind', 'visits', 'merchant_first_visit_at'], 'store_subjects_span');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('analytics_store_subjects', (t) => {
    t.dropIndex([], 'store_subjects_span');
    t.index(['store_id', 'last_visit_at', 'first_visit_at', 'subject_kind', 'visits'], 'store_subjects_span');
  });
  await knex.schema.alterTable('analytics_store_subjects', (t) => {
    t.dropColumn('merchant_first_visit_at');
  });
}
