/** Seeding helpers for analytics tests: rows are written the way the aggregate stage writes them. */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { lockSubjects, recordSightings } from '../../src/services/analytics/index.js';
import { awardPerk } from '../../src/services/perks.js';
import { retryOnLockConflict } from '../../src/storage/transactions.js';

export type Tenant = { merchantId: string; storeIds: string[]; deviceIds: string[]; batchIds: string[] };

export async function seedTenant(db: Knex, name: string, timezones: string[]): Promise<Tenant> {
  const merchantId = randomUUID();
  await db('merchants').insert({ id: merchantId, name });
  const tenant: Tenant = { merchantId, storeIds: [], deviceIds: [], batchIds: [] };
  for (const [i, timezone] of timezones.entries()) {
    const storeId = randomUUID();
    const deviceId = randomUUID();
    const batchId = randomUUID();
    await db('stores').insert({ id: storeId, merchant_id: merchantId, name: `${name} store ${i + 1}`, timezone });
    await db('devices').insert({ id: deviceId, store_id: storeId, name: 'robot' });
    await db('batches').insert({ id: batchId, device_id: deviceId, store_id: storeId, merchant_id: merchantId });
    tenant.storeIds.push(storeId);
    tenant.deviceIds.push(deviceId);
    tenant.batchIds.push(batchId);
  }
  return tenant;
}

export async function seedPerson(db: Knex, merchantId: string, displayName = 'Member'): Promise<string> {
  const id = randomUUID();
  await db('people').insert({ id, merchant_id: merchantId, display_name: displayName });
  return id;
}

export async function seedVisitor(db: Knex, merchantId: string, at = new Date()): Promise<string> {
  const id = randomUUID();
  await db('visitors').insert({ id, merchant_id: merchantId, first_seen_at: at, last_seen_at: at });
  return id;
}

export type CaptureFace = { kind: 'member' | 'visitor'; subjectId: string; age?: number | null; gender?: 'male' | 'female' | null };

/**
 * One capture with its faces and sightings, written like the aggregate stage writes them and
 * followed by recordSightings (and awardPerk for members), all in one transaction.
 */
export async function recordCapture(
  db: Knex,
  tenant: Tenant,
  storeIndex: number,
  capturedAt: Date,
  faces: CaptureFace[],
  options: { visitGapMinutes?: number; perks?: { points: number; cooldownMinutes: number }; lockFirst?: boolean } = {},
): Promise<{ captureId: string; points: number[] }> {
  const captureId = randomUUID();
  const storeId = tenant.storeIds[storeIndex];
  const points: number[] = [];
  await db.transaction(async (trx) => {
    if (options.lockFirst !== false) {
      await lockSubjects(trx, faces.map((f) => ({ merchantId: tenant.merchantId, subjectKind: f.kind, subjectId: f.subjectId })));
    }
    await trx('captures').insert({
      id: captureId, batch_id: tenant.batchIds[storeIndex], device_id: tenant.deviceIds[storeIndex], store_id: storeId,
      merchant_id: tenant.merchantId, sha256: randomUUID().replace(/-/g, '').padEnd(64, '0'), blob_key: `b/${captureId}`,
      bytes: 1, status: 'done', captured_at: capturedAt, captured_at_source: 'device', received_at: new Date(),
    });
    const sightings = [];
    for (const [index, face] of faces.entries()) {
      const faceId = randomUUID();
      await trx('faces').insert({
        id: faceId, capture_id: captureId, face_index: index, box_x: 0, box_y: 0, box_width: 10, box_height: 10,
        landmarks: '[]', score: 0.99, age: face.age ?? null, gender: face.gender ?? null, match_kind: face.kind,
        person_id: face.kind === 'member' ? face.subjectId : null, visitor_id: face.kind === 'visitor' ? face.subjectId : null,
        similarity: 0.9,
      });
      await trx('sightings').insert({
        face_id: faceId, capture_id: captureId, store_id: storeId, merchant_id: tenant.merchantId, subject_kind: face.kind,
        subject_id: face.subjectId, person_id: face.kind === 'member' ? face.subjectId : null,
        visitor_id: face.kind === 'visitor' ? face.subjectId : null, seen_at: capturedAt, age: face.age ?? null, gender: face.gender ?? null,
      });
      sightings.push({ faceId, storeId, merchantId: tenant.merchantId, subjectKind: face.kind, subjectId: face.subjectId, seenAt: capturedAt });
    }
    await recordSightings(trx, sightings, { visitGapMinutes: options.visitGapMinutes ?? 30 });
    if (options.perks) {
      for (const [index, face] of faces.entries()) {
        if (face.kind !== 'member') continue;
        points.push(await awardPerk(trx, { personId: face.subjectId, storeId, captureId, faceIndex: index, seenAt: capturedAt }, options.perks));
      }
    }
  });
  return { captureId, points };
}

/** Re-runs a transaction InnoDB aborted for a deadlock or lock wait timeout, as the workers do. */
export function withRetry<T>(fn: () => Promise<T>, attempts = 100): Promise<T> {
  return retryOnLockConflict(fn, attempts, () => 5 + Math.random() * 20);
}

export async function rollups(db: Knex, storeId: string, granularity: 'hour' | 'day') {
  const rows = await db('analytics_rollups').where({ store_id: storeId, granularity }).orderBy('bucket_start');
  return rows.map((r: Record<string, unknown>) => ({ ...r, bucket_start: (r.bucket_start as Date).toISOString(), local_date: String(r.local_date instanceof Date ? r.local_date.toISOString().slice(0, 10) : r.local_date) }));
}

export async function visitSpans(db: Knex, storeId: string, subjectId: string) {
  const rows = await db('visits').where({ store_id: storeId, subject_id: subjectId }).orderBy('started_at');
  return rows.map((r: { started_at: Date; ended_at: Date; sightings: number }) => [r.started_at.toISOString(), r.ended_at.toISOString(), r.sightings]);
}

/** mulberry32: a seeded PRNG with a full period, for reproducible random workloads. */
export function seededRandom(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
