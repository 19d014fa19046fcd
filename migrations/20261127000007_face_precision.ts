import type { Knex } from 'knex';

/**
 * Faces kept their detection score, similarity and attributes to two decimals: knex's `float()` is
 * FLOAT(8,2) on MySQL and MariaDB. They are DOUBLE now, so a capture reports what the models and the
 * matcher computed (a similarity of 0.4049 against a 0.40 threshold no longer reads 0.40).
 */
const COLUMNS = ['score', 'age', 'gender_confidence', 'similarity'] as const;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('faces', (t) => {
    for (const column of COLUMNS) {
      const c = t.double(column);
      (column === 'score' ? c.notNullable() : c.nullable()).alter();
    }
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('faces', (t) => {
    for (const column of COLUMNS) {
      const c = t.float(column);
      (column === 'score' ? c.notNullable() : c.nullable()).alter();
    }
  });
}
