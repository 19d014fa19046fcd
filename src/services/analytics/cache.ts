/**
 * Read cache of analytics answers, per API process.
 *
 * Every transaction that changes a store's visits or rollups bumps the store's row in
 * `analytics_store_versions` (incremental path, retraction, rebuild: store.ts
 * bumpStoreVersions), so an answer keyed by the versions of the stores it reads is current as long
 * as those versions are: a request costs one primary-key read to learn them, and a dashboard asking
 * for the same year of hours again gets the serialised answer back without recomputing or
 * re-serialising it. Versions only grow, so an answer computed from data newer than the version it
 * was keyed by is merely replaced sooner. Least recently used entries go first past `maxSize`
 * (in the caller's unit: bytes of a serialised answer, or an estimate).
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
  private readonly entries = new Map<string, { value: T; size: number }>();
  private size = 0;

  constructor(private readonly maxSize: number) {}

  get(key: string): T | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    this.entries.delete(key);
    this.entries.set(key, hit);
    return hit.value;
  }

  set(key: string, value: T, size: number): void {
    if (size > this.maxSize / 4) return; // one answer may not take over the cache
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.size -= old.size;
    }
    this.entries.set(key, { value, size });
    this.size += size;
    while (this.size > this.maxSize) {
      const [oldest, entry] = this.entries.entries().next().value as [string, { size: number }];
      this.entries.delete(oldest);
      this.size -= entry.size;
    }
  }

  clear(): void {
    this.entries.clear();
    this.size = 0;
  }
}
