/** Keyset pagination shared by the list repositories: fetch one row more than asked to know if a next page exists. */

/** The sort key of the last row of a page, from which the next page continues. */
export type Keyset = Record<string, string | number | null>;

export type Page<Row> = { rows: Row[]; next: Keyset | null };

/** `rows` as fetched with `limit + 1`: the page, and the keyset of its last row when more follow. */
export function pageOf<Row>(rows: Row[], limit: number, keysetOf: (row: Row) => Keyset): Page<Row> {
  if (rows.length <= limit) return { rows, next: null };
  const page = rows.slice(0, limit);
  return { rows: page, next: keysetOf(page[page.length - 1]) };
}
