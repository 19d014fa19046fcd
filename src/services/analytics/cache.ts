/**
 * Read cache of analytics answers, per API process.
 *
 * Every transaction that changes a store's visits or rollups bumps the store's row in
 * `analytics_store_versions` (incremental path, retraction, rebuild: store.ts
 * bumpStoreVersions), so an answer keyed by the versions of the stores it reads is current as long
 * as those versions are: a request costs one primary-key read to learn them, and a dashboard asking
 * for the same year of hours again gets the serialised answer back without recomputing or
 * re-serialising it. Versions only grow, so an answer computed from data newer than the version it
 * was keyed by is merely replaced sooner. Least recently used entries go first past `maxChars`.
 */
import type { Knex } from 'knex';

export async function storeVersion(db: Knex, storeId: string): Promise<string> {
  const row = await db('analytics_store_versions').where('store_id', storeId).first('version');
  return String(row?.version ?? 0);
}

/** The merchant's stores with their versions (name and timezone too: the summary shows them). */
export async function merchantStoresVersion(db: Knex, merchantId: string): Promise<string> {
  const rows: { id: string; name: string; timezone: string; version: unknown }[] = await db('stores as s')
    .leftJoin('analytics_store_versions as v', 'v.store_id', 's.id')
    .where('s.merchant_id', merchantId)
    .orderBy('s.id')
    .select('s.id', 's.name', 's.timezone', 'v.version');
  return rows.map((r) => `${r.id}:${r.version ?? 0}:${r.timezone}:${r.name}`).join('|');
}

export class AnswerCache<T> {
  private readonly entries = new Map<string, { value: T; chars: number }>();
  private chars = 0;

  constructor(private readonly maxChars: number) {}

  get(key: string): T | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    this.entries.delete(key);
    this.entries.set(key, hit);
    return hit.value;
  }

  set(key: string, value: T, chars: number): void {
    if (chars > this.maxChars / 4) return; // one answer may not take over the cache
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.chars -= old.chars;
    }
    this.entries.set(key, { value, chars });
    this.chars += chars;
    while (this.chars > this.maxChars) {
      const [oldest, entry] = this.entries.entries().next().value as [string, { chars: number }];
      this.entries.delete(oldest);
      this.chars -= entry.chars;
    }
  }

  clear(): void {
    this.entries.clear();
    this.chars = 0;
  }
}
