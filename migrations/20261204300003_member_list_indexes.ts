import type { Knex } from 'knex';

/** GET /v1/people pages a merchant's members by last seen or by points, each from its own index. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('people', (t) => {
    t.index(['merchant_id', 'last_seen_at', 'id'], 'people_by_last_seen');
    t.index(['merchant_id', 'points', 'id'], 'people_by_points');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('people', (t) => {
    t.dropIndex([], 'people_by_last_seen');
    t.dropIndex([], 'people_by_points');
  });
}
