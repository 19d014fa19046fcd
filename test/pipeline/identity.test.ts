/**
 * Identity changes end to end (issue 16): a visitor seen before enrolment linked to the new member
 * (with and without perks for the past), two visitors merged, each undone; photos of
 * ../shared/faces through the whole pipeline, on real MariaDB, Redis, Chroma and models.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { finishPendingVectorMoves, GalleryUnavailable, moveVisitor, undoChange, type IdentityDeps } from '../../src/services/identity.js';
import { seedTenant, upload } from '../api/support.js';
import { SHARED_DIR } from '../support/services.js';
import { startTestService, waitFor, type TestService } from './support.js';

let t: TestService;
type Tenant = Awaited<ReturnType<typeof seedTenant>>;

const photo = (file: string) => fs.readFile(path.join(SHARED_DIR, 'faces', 'face_recognition', file));

beforeAll(async () => {
  t = await startTestService();
});

afterAll(async () => {
  await t?.close();
});

/** Uploads one photo taken at `capturedAt` and waits for it; answers its single face's match. */
async function capture(
  tenant: Tenant,
  file: string | Buffer,
  capturedAt: string,
): Promise<{ captureId: string; faceId: string; match: { kind: string; personId?: string; visitorId?: string } }> {
  const bytes = typeof file === 'string' ? await photo(file) : file;
  const r = await upload(t, tenant.deviceKey, [{ name: 'capturedAt', value: capturedAt }, { name: 'images', file: bytes, filename: 'capture.jpg' }]);
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  const captureId = r.body.captures[0].id as string;
  const done = await waitFor(async () => {
    const c = await t.call('GET', `/v1/captures/${captureId}`, { key: tenant.deviceKey });
    return ['done', 'failed'].includes(c.body.status) ? c.body : undefined;
  }, 90_000, `capture ${captureId}`);
  expect(done.status).toBe('done');
  expect(done.faces).toHaveLength(1);
  return { captureId, faceId: done.faces[0].id, match: done.faces[0].match };
}

const identityOf = (service: TestService): IdentityDeps => ({
  db: service.env.db,
  gallery: service.gallery,
  visitGapMinutes: service.env.config.VISIT_GAP_MINUTES,
  perks: { points: service.env.config.PERK_POINTS, cooldownMinutes: service.env.config.PERK_COOLDOWN_MINUTES },
});

/** Everything analytics keep of the merchant, ids of visits left out (a re-sessionised visit is a new row). */
async function analyticsRows(tenant: Tenant) {
  const db = t.env.db;
  const visits = await db('visits').where('merchant_id', tenant.merchantId).orderBy(['subject_id', 'started_at'])
    .select('store_id', 'subject_kind', 'subject_id', 'started_at', 'ended_at', 'sightings', 'age_milli_sum', 'age_count', 'male_count', 'female_count');
  const rollups = await db('analytics_rollups').where('store_id', tenant.storeId).orderBy(['granularity', 'bucket_start']);
  const subjects = await db('analytics_subjects').where('merchant_id', tenant.merchantId).whereNotNull('first_visit_at').orderBy('subject_id')
    .select('subject_id', 'subject_kind', 'first_visit_at', 'first_visit_store_id', 'last_visit_at');
  const spans = await db('analytics_store_subjects').where('merchant_id', tenant.merchantId).orderBy('subject_id');
  const sightings = await db('sightings').where('merchant_id', tenant.merchantId).orderBy('face_id').select('face_id', 'subject_kind', 'subject_id', 'person_id', 'visitor_id');
  const faces = await db('faces as f').join('captures as c', 'c.id', 'f.capture_id').where('c.merchant_id', tenant.merchantId).orderBy('f.id')
    .select('f.id', 'f.match_kind', 'f.person_id', 'f.visitor_id');
  return { visits, rollups, subjects, spans, sightings, faces };
}

async function totals(tenant: Tenant) {
  const range = 'from=2026-11-01&to=2026-12-01&interval=day';
  const traffic = await t.call('GET', `/v1/stores/${tenant.storeId}/analytics/traffic?${range}`, { key: tenant.merchantKey });
  const visitors = await t.call('GET', `/v1/stores/${tenant.storeId}/analytics/visitors?${range}`, { key: tenant.merchantKey });
  return { traffic: traffic.body.totals, visitors: visitors.body.totals };
}

describe('linking a visitor to a new member', () => {
  let tenant: Tenant;
  let visitorId: string;
  let memberId: string;

  beforeAll(async () => {
    tenant = await seedTenant(t, 'Link Co');
    // The same person before enrolment: two captures minutes apart (one visit, within the perk cooldown), one the next day.
    const first = await capture(tenant, 'examples/obama-480p.jpg', '2026-11-10T10:00:00Z');
    expect(first.match.kind).toBe('visitor');
    visitorId = first.match.visitorId!;
    for (const [file, at] of [['examples/obama-720p.jpg', '2026-11-10T10:05:00Z'], ['examples/obama-1080p.jpg', '2026-11-11T10:00:00Z']]) {
      expect((await capture(tenant, file, at)).match).toMatchObject({ kind: 'visitor', visitorId });
    }
    const person = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Barack' } });
    memberId = person.body.id;
    const enrol = await upload(t, tenant.merchantKey, [{ name: 'image', file: await photo('examples/knn_examples/train/obama/obama.jpg'), filename: 'b.jpg' }], `/v1/people/${memberId}/faces`);
    expect(enrol.status, JSON.stringify(enrol.body)).toBe(201);
  });

  it('gives the member the visitor\'s past: visits, vectors, the member/visitor split (totals unchanged), no perks unless asked; undo puts it all back', async () => {
    const before = await analyticsRows(tenant);
    const totalsBefore = await totals(tenant);
    expect(totalsBefore.traffic).toMatchObject({ visits: 2, memberVisits: 0, visitorVisits: 2 });

    const linked = await t.call('POST', `/v1/people/${memberId}/visitors`, { key: tenant.merchantKey, json: { visitorId } });
    expect(linked.status, JSON.stringify(linked.body)).toBe(200);
    expect(linked.body).toMatchObject({ person: { id: memberId, points: 0, lastSeenAt: '2026-11-11T10:00:00.000Z' }, sightingsMoved: 3, pointsAwarded: 0, auditId: expect.any(Number) });
    const visits = await t.call('GET', `/v1/people/${memberId}/visits`, { key: tenant.merchantKey });
    expect(visits.body.items).toEqual([
      { storeId: tenant.storeId, startedAt: '2026-11-11T10:00:00.000Z', endedAt: '2026-11-11T10:00:00.000Z', sightings: 1 },
      { storeId: tenant.storeId, startedAt: '2026-11-10T10:00:00.000Z', endedAt: '2026-11-10T10:05:00.000Z', sightings: 2 },
    ]);
    const gone = await t.call('GET', `/v1/visitors/${visitorId}`, { key: tenant.merchantKey });
    expect([gone.status, gone.body.error.movedTo]).toEqual([404, { kind: 'member', id: memberId }]);
    const after = await totals(tenant);
    expect(after.traffic).toEqual({ ...totalsBefore.traffic, memberVisits: 2, visitorVisits: 0, newVisitors: 0 });
    expect(after.visitors.uniqueVisitors).toBe(0);
    expect(await t.gallery.countSubjectVectors('member', tenant.merchantId, memberId)).toBe(2);
    expect(await t.gallery.countSubjectVectors('visitor', tenant.merchantId, visitorId)).toBe(0);
    const ledger = await t.call('GET', `/v1/people/${memberId}/points`, { key: tenant.merchantKey });
    expect(ledger.body).toMatchObject({ balance: 0, items: [] });

    const undo = await t.call('POST', `/v1/audit/${linked.body.auditId}/undo`, { key: tenant.merchantKey });
    expect(undo.status, JSON.stringify(undo.body)).toBe(200);
    expect(undo.body).toEqual({ undone: linked.body.auditId, auditId: expect.any(Number) });
    expect(await analyticsRows(tenant)).toEqual(before);
    expect(await totals(tenant)).toEqual(totalsBefore);
    expect((await t.call('GET', `/v1/visitors/${visitorId}`, { key: tenant.merchantKey })).body).toMatchObject({ id: visitorId, visits: 2 });
    expect(await t.gallery.countSubjectVectors('member', tenant.merchantId, memberId)).toBe(1);
    expect(await t.gallery.countSubjectVectors('visitor', tenant.merchantId, visitorId)).toBe(1);
    expect((await t.call('GET', `/v1/people/${memberId}`, { key: tenant.merchantKey })).body.lastSeenAt).toBeNull();
    const again = await t.call('POST', `/v1/audit/${linked.body.auditId}/undo`, { key: tenant.merchantKey });
    expect([again.status, again.body.error.code]).toEqual([409, 'already_undone']);
  });

  it('with awardPast, awards the past under the cooldown; the undo takes the points back', async () => {
    const linked = await t.call('POST', `/v1/people/${memberId}/visitors`, { key: tenant.merchantKey, json: { visitorId, awardPast: true } });
    expect(linked.status, JSON.stringify(linked.body)).toBe(200);
    // 10:00 and 10:05 are within one cooldown: two awards, not three.
    expect(linked.body).toMatchObject({ sightingsMoved: 3, pointsAwarded: 10, person: { points: 10 } });
    const ledger = await t.call('GET', `/v1/people/${memberId}/points`, { key: tenant.merchantKey });
    expect(ledger.body.items.map((e: { kind: string; at: string; points: number }) => [e.kind, e.at, e.points])).toEqual([
      ['award', '2026-11-11T10:00:00.000Z', 5],
      ['award', '2026-11-10T10:00:00.000Z', 5],
    ]);
    const audit = await t.call('GET', '/v1/audit?limit=1', { key: tenant.merchantKey });
    expect(audit.body.items[0]).toMatchObject({ action: 'visitor.linked', subject: { kind: 'member', id: memberId }, details: { visitorId, sightingsMoved: 3, pointsAwarded: 10 } });

    const undo = await t.call('POST', `/v1/audit/${linked.body.auditId}/undo`, { key: tenant.merchantKey });
    expect(undo.status, JSON.stringify(undo.body)).toBe(200);
    expect((await t.call('GET', `/v1/people/${memberId}/points`, { key: tenant.merchantKey })).body).toMatchObject({ balance: 0, items: [] });
  });
});

describe('merging two visitors', () => {
  it('joins their sightings, visits (re-sessionised) and vectors; the undo restores analytics, sightings and vectors exactly', async () => {
    const tenant = await seedTenant(t, 'Merge Co');
    const a = await capture(tenant, 'examples/obama-480p.jpg', '2026-11-10T10:00:00Z');
    const b = await capture(tenant, 'examples/alex-lacamoire.png', '2026-11-10T10:20:00Z');
    const [keep, merged] = [a.match.visitorId!, b.match.visitorId!];
    expect(keep).not.toBe(merged);
    const before = await analyticsRows(tenant);
    const totalsBefore = await totals(tenant);
    expect(totalsBefore.traffic).toMatchObject({ visits: 2, visitorVisits: 2, newVisitors: 2 });

    const r = await t.call('POST', `/v1/visitors/${merged}/merge`, { key: tenant.merchantKey, json: { into: keep } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({
      visitor: { id: keep, merchantId: tenant.merchantId, visits: 1, firstSeenAt: '2026-11-10T10:00:00.000Z', lastSeenAt: '2026-11-10T10:20:00.000Z', storeIds: [tenant.storeId] },
      auditId: expect.any(Number),
    });
    // Twenty minutes apart, under the gap: one visit now.
    expect((await t.call('GET', `/v1/visitors/${keep}`, { key: tenant.merchantKey })).body.history.items).toEqual([
      { storeId: tenant.storeId, startedAt: '2026-11-10T10:00:00.000Z', endedAt: '2026-11-10T10:20:00.000Z', sightings: 2 },
    ]);
    expect((await totals(tenant)).traffic).toMatchObject({ visits: 1, visitorVisits: 1, newVisitors: 1 });
    expect((await t.call('GET', `/v1/visitors/${merged}`, { key: tenant.merchantKey })).body.error.movedTo).toEqual({ kind: 'visitor', id: keep });
    expect((await t.call('GET', '/v1/visitors', { key: tenant.merchantKey })).body.items.map((v: { id: string }) => v.id)).toEqual([keep]);
    expect(await t.gallery.subjectVectorIds('visitor', tenant.merchantId, keep)).toEqual([keep, merged].sort());

    const undo = await t.call('POST', `/v1/audit/${r.body.auditId}/undo`, { key: tenant.merchantKey });
    expect(undo.status, JSON.stringify(undo.body)).toBe(200);
    expect(await analyticsRows(tenant)).toEqual(before);
    expect(await totals(tenant)).toEqual(totalsBefore);
    expect(await t.gallery.subjectVectorIds('visitor', tenant.merchantId, keep)).toEqual([keep]);
    expect(await t.gallery.subjectVectorIds('visitor', tenant.merchantId, merged)).toEqual([merged]);
    const seen = await t.env.db('visitors').whereIn('id', [keep, merged]).orderBy('first_seen_at').select('first_seen_at', 'last_seen_at', 'merged_into_id');
    expect(seen).toEqual([
      { first_seen_at: new Date('2026-11-10T10:00:00Z'), last_seen_at: new Date('2026-11-10T10:00:00Z'), merged_into_id: null },
      { first_seen_at: new Date('2026-11-10T10:20:00Z'), last_seen_at: new Date('2026-11-10T10:20:00Z'), merged_into_id: null },
    ]);
  });

  it('refuses an undo once the subjects changed again (409 undo_stale), and merges across tenants are 404', async () => {
    const tenant = await seedTenant(t, 'Stale Co');
    const other = await seedTenant(t, 'Other Co');
    const a = (await capture(tenant, 'examples/obama-480p.jpg', '2026-11-12T10:00:00Z')).match.visitorId!;
    const b = (await capture(tenant, 'examples/alex-lacamoire.png', '2026-11-12T12:00:00Z')).match.visitorId!;
    const c = (await capture(other, 'examples/obama-720p.jpg', '2026-11-12T12:00:00Z')).match.visitorId!;
    expect((await t.call('POST', `/v1/visitors/${c}/merge`, { key: tenant.merchantKey, json: { into: a } })).status).toBe(404);
    expect((await t.call('POST', `/v1/visitors/${b}/merge`, { key: other.merchantKey, json: { into: c } })).status).toBe(404);
    expect((await t.call('POST', `/v1/visitors/${a}/merge`, { key: tenant.merchantKey, json: { into: a } })).status).toBe(422);
    expect((await t.call('POST', `/v1/visitors/${a}/merge`, { key: tenant.deviceKey, json: { into: b } })).status).toBe(403);

    const d = (await capture(tenant, 'examples/lin-manuel-miranda.png', '2026-11-12T15:00:00Z')).match.visitorId!;
    const first = await t.call('POST', `/v1/visitors/${b}/merge`, { key: tenant.merchantKey, json: { into: a } });
    const second = await t.call('POST', `/v1/visitors/${d}/merge`, { key: tenant.merchantKey, json: { into: a } });
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    expect((await t.call('POST', `/v1/audit/${first.body.auditId}/undo`, { key: tenant.merchantKey })).body.error.code).toBe('undo_stale');
    const person = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Joe' } });
    const link = await t.call('POST', `/v1/people/${person.body.id}/visitors`, { key: tenant.merchantKey, json: { visitorId: a } });
    expect(link.status, JSON.stringify(link.body)).toBe(200);
    expect(link.body.sightingsMoved).toBe(3);
    const stale = await t.call('POST', `/v1/audit/${second.body.auditId}/undo`, { key: tenant.merchantKey });
    expect([stale.status, stale.body.error.code]).toEqual([409, 'undo_stale']);
    expect((await t.call('POST', `/v1/audit/${link.body.auditId}/undo`, { key: other.merchantKey })).status).toBe(404);
    // Undone in reverse order, all go.
    for (const change of [link, second, first]) {
      const undone = await t.call('POST', `/v1/audit/${change.body.auditId}/undo`, { key: tenant.merchantKey });
      expect(undone.status, JSON.stringify(undone.body)).toBe(200);
    }
    expect((await t.call('GET', '/v1/visitors', { key: tenant.merchantKey })).body.items).toHaveLength(3);
    const entry = await t.call('GET', '/v1/audit?limit=1', { key: tenant.merchantKey });
    const notUndoable = await t.call('POST', `/v1/audit/${entry.body.items[0].id}/undo`, { key: tenant.merchantKey });
    expect([notUndoable.status, notUndoable.body.error.code]).toEqual([422, 'not_undoable']);
  });
});

describe('a gallery outage during a merge', () => {
  it('leaves the merge recorded with its vectors pending (503); the same request sent again moves them and answers the same entry', async () => {
    const tenant = await seedTenant(t, 'Outage Co');
    const keep = (await capture(tenant, 'examples/obama-480p.jpg', '2026-11-13T10:00:00Z')).match.visitorId!;
    const merged = (await capture(tenant, 'examples/alex-lacamoire.png', '2026-11-13T12:00:00Z')).match.visitorId!;
    const down = { ...identityOf(t), gallery: { subjectVectorIds: t.gallery.subjectVectorIds.bind(t.gallery), moveVectors: async () => Promise.reject(new Error('chroma is down')) } };
    const failed = await moveVisitor(down, { keyId: randomUUID(), role: 'merchant' }, { merchantId: tenant.merchantId, visitorId: merged, into: { kind: 'visitor', id: keep } })
      .catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(GalleryUnavailable);
    expect((failed as GalleryUnavailable).done).toBe(true);
    // The SQL side is whole: the visitor is merged, its vector still where it was.
    expect((await t.call('GET', `/v1/visitors/${merged}`, { key: tenant.merchantKey })).body.error.movedTo).toEqual({ kind: 'visitor', id: keep });
    expect(await t.gallery.subjectVectorIds('visitor', tenant.merchantId, merged)).toEqual([merged]);
    const entry = (await t.call('GET', '/v1/audit?limit=1', { key: tenant.merchantKey })).body.items[0];
    expect(entry).toMatchObject({ action: 'visitor.merged', subject: { kind: 'visitor', id: keep } });

    const retried = await t.call('POST', `/v1/visitors/${merged}/merge`, { key: tenant.merchantKey, json: { into: keep } });
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    expect(retried.body.auditId).toBe(entry.id);
    expect(await t.gallery.subjectVectorIds('visitor', tenant.merchantId, keep)).toEqual([keep, merged].sort());
    expect((await t.call('GET', '/v1/audit?limit=1', { key: tenant.merchantKey })).body.items[0].id).toBe(entry.id);
  });

  it('leaves nothing pending that nobody resends: housekeeping moves the vectors of the merge and of its undo', async () => {
    const tenant = await seedTenant(t, 'Outage Two');
    const keep = (await capture(tenant, 'examples/obama-480p.jpg', '2026-11-14T10:00:00Z')).match.visitorId!;
    const merged = (await capture(tenant, 'examples/alex-lacamoire.png', '2026-11-14T12:00:00Z')).match.visitorId!;
    const down = { ...identityOf(t), gallery: { subjectVectorIds: t.gallery.subjectVectorIds.bind(t.gallery), moveVectors: async () => Promise.reject(new Error('chroma is down')) } };
    const actor = { keyId: randomUUID(), role: 'merchant' as const };
    await expect(moveVisitor(down, actor, { merchantId: tenant.merchantId, visitorId: merged, into: { kind: 'visitor', id: keep } })).rejects.toBeInstanceOf(GalleryUnavailable);
    await expect(finishPendingVectorMoves(down)).rejects.toBeInstanceOf(GalleryUnavailable); // still down: stays pending
    expect(await t.gallery.subjectVectorIds('visitor', tenant.merchantId, merged)).toEqual([merged]);

    expect(await finishPendingVectorMoves(identityOf(t))).toEqual({ vectorMovesFinished: 1 });
    expect(await t.gallery.subjectVectorIds('visitor', tenant.merchantId, keep)).toEqual([keep, merged].sort());
    expect(await finishPendingVectorMoves(identityOf(t))).toEqual({ vectorMovesFinished: 0 });

    // The undo's vectors, left pending by another outage, go back the same way.
    const entry = (await t.call('GET', '/v1/audit?limit=1', { key: tenant.merchantKey })).body.items[0];
    await expect(undoChange(down, actor, { auditId: entry.id, merchantId: tenant.merchantId })).rejects.toBeInstanceOf(GalleryUnavailable);
    expect(await finishPendingVectorMoves(identityOf(t))).toEqual({ vectorMovesFinished: 1 });
    expect(await t.gallery.subjectVectorIds('visitor', tenant.merchantId, keep)).toEqual([keep]);
    expect(await t.gallery.subjectVectorIds('visitor', tenant.merchantId, merged)).toEqual([merged]);
  });
});

describe('"not this person"', () => {
  it('sent twice at once (a double click), rejects once and keeps the new visitor\'s vector', async () => {
    const tenant = await seedTenant(t, 'Double Click Co');
    const person = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Barack' } });
    const enrol = await upload(t, tenant.merchantKey, [{ name: 'image', file: await photo('examples/knn_examples/train/obama/obama.jpg'), filename: 'b.jpg' }], `/v1/people/${person.body.id}/faces`);
    expect(enrol.status, JSON.stringify(enrol.body)).toBe(201);
    const seen = await capture(tenant, 'examples/obama-480p.jpg', '2026-11-12T10:00:00Z');
    expect(seen.match).toMatchObject({ kind: 'member', personId: person.body.id });

    const answers = await Promise.all([1, 2].map(() => t.call('POST', `/v1/faces/${seen.faceId}/reject`, { key: tenant.merchantKey })));
    const won = answers.filter((a) => a.status === 200);
    expect(won, JSON.stringify(answers.map((a) => a.body))).toHaveLength(1);
    const visitorId = won[0].body.subject.id as string;
    expect(await t.gallery.subjectVectorIds('visitor', tenant.merchantId, visitorId)).toEqual([visitorId]);
    expect((await t.call('GET', `/v1/captures/${seen.captureId}`, { key: tenant.deviceKey })).body.faces[0].match).toMatchObject({ kind: 'visitor', visitorId });
  });

  it('rejects a member match: the perk is reversed in the ledger, the face becomes a visitor, and a close face is not matched to the member again', async () => {
    const tenant = await seedTenant(t, 'Reject Co');
    const person = await t.call('POST', '/v1/people', { key: tenant.merchantKey, json: { displayName: 'Barack' } });
    const memberId = person.body.id as string;
    const enrol = await upload(t, tenant.merchantKey, [{ name: 'image', file: await photo('examples/knn_examples/train/obama/obama.jpg'), filename: 'b.jpg' }], `/v1/people/${memberId}/faces`);
    expect(enrol.status, JSON.stringify(enrol.body)).toBe(201);
    const seen = await capture(tenant, 'examples/obama-480p.jpg', '2026-11-10T10:00:00Z');
    expect(seen.match).toMatchObject({ kind: 'member', personId: memberId });
    expect((await t.call('GET', `/v1/people/${memberId}`, { key: tenant.merchantKey })).body.points).toBe(5);

    const other = await seedTenant(t, 'Reject Rival');
    expect((await t.call('POST', `/v1/faces/${seen.faceId}/reject`, { key: other.merchantKey })).status).toBe(404);
    expect((await t.call('POST', `/v1/faces/${seen.faceId}/reject`, { key: tenant.deviceKey })).status).toBe(403);
    const r = await t.call('POST', `/v1/faces/${seen.faceId}/reject`, { key: tenant.merchantKey });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({ faceId: seen.faceId, subject: { kind: 'visitor', id: expect.any(String) }, auditId: expect.any(Number) });
    const visitorId = r.body.subject.id as string;

    const ledger = await t.call('GET', `/v1/people/${memberId}/points`, { key: tenant.merchantKey });
    expect(ledger.body.balance).toBe(0);
    expect(ledger.body.items.map((e: { kind: string; points: number; captureId: string }) => [e.kind, e.points, e.captureId])).toEqual([
      ['reversal', -5, seen.captureId],
      ['award', 5, seen.captureId],
    ]);
    const face = (await t.call('GET', `/v1/captures/${seen.captureId}`, { key: tenant.deviceKey })).body.faces[0];
    expect(face.match).toMatchObject({ kind: 'visitor', visitorId });
    expect((await t.call('GET', `/v1/people/${memberId}/visits`, { key: tenant.merchantKey })).body.items).toEqual([]);
    expect((await t.call('GET', `/v1/visitors/${visitorId}`, { key: tenant.merchantKey })).body).toMatchObject({ visits: 1, firstSeenAt: '2026-11-10T10:00:00.000Z' });
    expect((await totals(tenant)).traffic).toMatchObject({ visits: 1, memberVisits: 0, visitorVisits: 1, newVisitors: 1 });
    expect(await t.gallery.countSubjectVectors('visitor', tenant.merchantId, visitorId)).toBe(1);
    const audit = await t.call('GET', '/v1/audit?limit=1', { key: tenant.merchantKey });
    expect(audit.body.items[0]).toMatchObject({ id: r.body.auditId, action: 'face.rejected', subject: { kind: 'member', id: memberId }, details: { faceId: seen.faceId, pointsReversed: 5 } });
    const undo = await t.call('POST', `/v1/audit/${r.body.auditId}/undo`, { key: tenant.merchantKey });
    expect([undo.status, undo.body.error.code]).toEqual([422, 'not_undoable']);

    // The same photo re-encoded: closer to the rejected face than to the member's enrolled one.
    const again = await sharp(await photo('examples/obama-480p.jpg')).jpeg({ quality: 85 }).toBuffer();
    const later = await capture(tenant, again, '2026-11-11T10:00:00Z');
    expect(later.match).toMatchObject({ kind: 'visitor', visitorId });
    expect((await t.call('GET', `/v1/people/${memberId}`, { key: tenant.merchantKey })).body.points).toBe(0);

    // The remembered rejection is biometric: it goes with the member.
    expect(await t.env.db('rejected_matches').where('subject_id', memberId).count({ n: '*' })).toEqual([{ n: 1 }]);
    expect((await t.call('DELETE', `/v1/people/${memberId}`, { key: tenant.merchantKey })).status).toBe(204);
    expect(await t.env.db('rejected_matches').where('subject_id', memberId).count({ n: '*' })).toEqual([{ n: 0 }]);
  });

  it('rejects a visitor match: with no other visitor close, the face becomes a new visitor and each keeps one visit', async () => {
    const tenant = await seedTenant(t, 'Reject Visitor Co');
    const first = await capture(tenant, 'examples/obama-480p.jpg', '2026-11-14T10:00:00Z');
    const second = await capture(tenant, 'examples/obama-720p.jpg', '2026-11-14T10:10:00Z');
    expect(second.match).toMatchObject({ kind: 'visitor', visitorId: first.match.visitorId });
    expect((await t.call('GET', `/v1/visitors/${first.match.visitorId}`, { key: tenant.merchantKey })).body.history.items).toHaveLength(1);

    const r = await t.call('POST', `/v1/faces/${second.faceId}/reject`, { key: tenant.merchantKey });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const fresh = r.body.subject.id as string;
    expect(fresh).not.toBe(first.match.visitorId);
    for (const [id, at] of [[first.match.visitorId!, '2026-11-14T10:00:00.000Z'], [fresh, '2026-11-14T10:10:00.000Z']]) {
      const visitor = await t.call('GET', `/v1/visitors/${id}`, { key: tenant.merchantKey });
      expect(visitor.body.history.items).toEqual([{ storeId: tenant.storeId, startedAt: at, endedAt: at, sightings: 1 }]);
    }
    expect((await totals(tenant)).traffic).toMatchObject({ visits: 2, uniqueSubjects: 2, visitorVisits: 2, newVisitors: 2 });
    const again = await t.call('POST', `/v1/faces/${second.faceId}/reject`, { key: tenant.merchantKey });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    // Not back to the first visitor either: this face was rejected for it.
    expect([fresh, first.match.visitorId]).not.toContain(again.body.subject.id);
  });
});
