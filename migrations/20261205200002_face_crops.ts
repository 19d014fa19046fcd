import type { Knex } from 'knex';

/**
 * Face crops, opt-in per merchant (issue 16 item 10): with keep_face_crops on, a 112x112 aligned
 * JPEG of members' and returning visitors' faces is kept in the blob store (src/services/face-crops.ts).
 * Off by default: a crop is a picture of a person's face, kept beyond the capture.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('merchants', (t) => {
    t.boolean('keep_face_crops').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('merchants', (t) => {
    t.dropColumn('keep_face_crops');
  });
}
