/** Members: create, list, read, update, erase, enrol and remove faces (through a worker), their visits. */
import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import { z } from 'zod';
import type { Person } from '../../../models/Person.js';
import { PersonFace } from '../../../models/PersonFace.js';
import {
  DuplicateExternalIdError,
  findPerson,
  findPersonFace,
  listPeople,
  listPersonFaces,
  PEOPLE_SORTS,
  type PeopleSort,
} from '../../storage/repositories/people.js';
import { findMerchant } from '../../storage/repositories/tenants.js';
import { findVisitor } from '../../storage/repositories/visitors.js';
import { moveVisitor } from '../../services/identity.js';
import { answering, identityDeps } from './identity-changes.js';
import { createMember, eraseMemberRows, recordEnrolment, removeFaceRow, updateMember } from '../../services/members.js';
import { activePack } from '../../storage/settings.js';
import type { RouteDeps } from '../app.js';
import { actingMerchant, authorize } from '../auth.js';
import { ApiError, notFound } from '../errors.js';
import { interactiveRateLimiter } from '../backpressure.js';
import { runInteractive } from '../interactive.js';
import { memberInPath } from './member-in-path.js';
import { receiveSingleImage } from './single-image.js';
import { visitHistory, visitHistoryQuery } from './visit-history.js';
import { externalIdField, nameField, parse, uuid } from '../validation.js';
import { decodeCursor, listBody, pageQuery } from '../pagination.js';

const createPersonBody = z.strictObject({
  merchantId: uuid.optional(),
  externalId: externalIdField.nullable().optional(),
  displayName: nameField,
});

const listPeopleQuery = z.strictObject({
  merchantId: uuid.optional(),
  q: nameField.optional(),
  externalId: externalIdField.optional(),
  sort: z.enum(PEOPLE_SORTS).default('lastSeen'),
  ...pageQuery,
});
/** A cursor continues the order it was made in: a points value for sort=points, a time (or null: never seen) otherwise. */
const peopleCursor = (sort: PeopleSort) => z.strictObject({ value: sort === 'points' ? z.number().int() : z.iso.datetime().nullable(), id: uuid });

const updatePersonBody = z
  .strictObject({ displayName: nameField.optional(), externalId: externalIdField.nullable().optional() })
  .refine((b) => b.displayName !== undefined || b.externalId !== undefined, { message: 'name displayName, externalId or both' });

const faceParams = z.object({ id: uuid, faceId: uuid });

const linkVisitorBody = z.strictObject({ visitorId: uuid, awardPast: z.boolean().default(false) });

/** Where a member's enrolment images live; erasure removes the whole folder. */
export const personBlobPrefix = (personId: string) => `people/${personId}`;

/** Enrolment failure codes from the worker → HTTP status. */
const ENROL_STATUS: Record<string, number> = {
  no_face: 422,
  multiple_faces: 422,
  person_erased: 404,
  unsupported_format: 415,
  too_large: 413,
  truncated: 422,
  empty: 422,
};

export function peopleRoutes(router: Router, deps: RouteDeps): void {
  const { db, blobs, config, queues } = deps;
  const checkInteractiveRate = interactiveRateLimiter(queues.connection, config.QUEUE_PREFIX, config.MERCHANT_INTERACTIVE_PER_MINUTE, config.MERCHANT_INTERACTIVE_BURST);

  const personView = (person: Person, faces: PersonFace[]) => ({
    id: person.id,
    merchantId: person.merchantId,
    externalId: person.externalId,
    displayName: person.displayName,
    points: person.points,
    faces: faces.map((f) => ({ id: f.id, pack: f.pack, createdAt: f.createdAt.toISOString() })),
    lastSeenAt: person.lastSeenAt ? person.lastSeenAt.toISOString() : null,
    createdAt: person.createdAt.toISOString(),
  });

  const conflictOnDuplicate = async <T>(write: () => Promise<T>): Promise<T> => {
    try {
      return await write();
    } catch (error) {
      if (error instanceof DuplicateExternalIdError) throw new ApiError(409, 'conflict', error.message);
      throw error;
    }
  };

  router.get('/v1/people', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const query = parse(listPeopleQuery, ctx.query, 'query');
    const merchantId = actingMerchant(principal, query.merchantId);
    if (!(await findMerchant(db, merchantId, principal))) throw notFound('merchant');
    const after = decodeCursor(query.cursor, peopleCursor(query.sort));
    const page = await listPeople(db, { merchantId, q: query.q, externalId: query.externalId, sort: query.sort, after, limit: query.limit });
    const faces = await listPersonFaces(db, page.rows.map((p) => p.id));
    ctx.body = listBody(page, (person) => personView(person, faces.filter((f) => f.personId === person.id)));
  });

  router.post('/v1/people', async (ctx) => {
    const principal = authorize(ctx, 'admin', 'merchant');
    const body = parse(createPersonBody, ctx.request.body, 'body');
    const merchantId = actingMerchant(principal, body.merchantId);
    if (!(await findMerchant(db, merchantId, principal))) throw notFound('merchant');
    const person = await conflictOnDuplicate(() => createMember(db, principal, { merchantId, externalId: body.externalId ?? null, displayName: body.displayName }));
    ctx.status = 201;
    ctx.set('Location', `/v1/people/${person.id}`);
    ctx.body = personView(person, await listPersonFaces(db, [person.id]));
  });

  const galleryOrUnavailable = (what: string) => {
    if (!deps.gallery) throw new ApiError(503, 'gallery_unavailable', `${what} needs the face gallery, which this API process is not connected to`);
    return deps.gallery;
  };
  const galleryUnavailable = (outcome: string) =>
    new ApiError(503, 'gallery_unavailable', `the face gallery is unavailable; ${outcome}, retry later`, undefined, { 'Retry-After': '5' });

  router.get('/v1/people/:id', async (ctx) => {
    const { person } = await memberInPath(ctx, db);
    ctx.body = personView(person, await listPersonFaces(db, [person.id]));
  });

  router.patch('/v1/people/:id', async (ctx) => {
    const { person, principal } = await memberInPath(ctx, db);
    const changes = parse(updatePersonBody, ctx.request.body, 'body');
    const updated = await conflictOnDuplicate(() => updateMember(db, principal, person, changes));
    ctx.body = personView(updated, await listPersonFaces(db, [person.id]));
  });

  router.get('/v1/people/:id/visits', async (ctx) => {
    const { person } = await memberInPath(ctx, db);
    const query = parse(visitHistoryQuery, ctx.query, 'query');
    ctx.body = await visitHistory(db, { merchantId: person.merchantId, kind: 'member', id: person.id }, query);
  });

  /**
   * Links a visitor to the member ("this returning visitor just signed up"): its sightings, visits
   * and vectors become the member's; perks for its past only with `awardPast` (each under the cooldown).
   */
  router.post('/v1/people/:id/visitors', async (ctx) => {
    const { person, principal } = await memberInPath(ctx, db);
    const body = parse(linkVisitorBody, ctx.request.body, 'body');
    const visitor = await findVisitor(db, body.visitorId, principal);
    // Sent again after a gallery outage, the link finishes: the visitor already points at this member.
    if (!visitor || visitor.merchantId !== person.merchantId || ('movedTo' in visitor && visitor.movedTo.id !== person.id)) throw notFound('visitor');
    const identity = identityDeps(deps);
    const outcome = await answering(() =>
      moveVisitor(identity, principal, { merchantId: person.merchantId, visitorId: body.visitorId, into: { kind: 'member', id: person.id }, awardPast: body.awardPast }),
    );
    const linked = await findPerson(db, person.id, principal);
    if (!linked) throw notFound('person');
    ctx.body = { person: personView(linked, await listPersonFaces(db, [person.id])), ...outcome };
  });

  /**
   * Erasure: the member's vectors in the gallery, then the enrolment images (if either fails the
   * rows are untouched and the call can be retried), then the rows (person, enrolled faces, perk
   * awards, redemptions; faces and sightings keep anonymous counts with the link cleared). The
   * audit trail keeps that the member was erased, by whom.
   */
  router.delete('/v1/people/:id', async (ctx) => {
    const { person, principal } = await memberInPath(ctx, db);
    const gallery = galleryOrUnavailable('erasure');
    try {
      await gallery.deleteSubject('member', person.merchantId, person.id);
    } catch (error) {
      (ctx.state.log ?? deps.logger).warn({ err: error, personId: person.id }, 'gallery erasure failed');
      throw galleryUnavailable('nothing was erased');
    }
    // Every enrolment image is under the person's prefix, so that the folder goes in one call.
    await blobs.deletePrefix(personBlobPrefix(person.id));
    await eraseMemberRows(db, principal, person);
    ctx.status = 204;
  });

  /**
   * Removes one enrolled face: its vectors in every pack's member gallery first (if that fails the
   * face stays and the call can be retried), then its row, then its image unless another face uses it.
   */
  router.delete('/v1/people/:id/faces/:faceId', async (ctx) => {
    const { person, principal } = await memberInPath(ctx, db);
    const { faceId } = parse(faceParams, ctx.params, 'path');
    const face = await findPersonFace(db, person.id, faceId);
    if (!face) throw notFound('face');
    const gallery = galleryOrUnavailable('removing a face');
    try {
      await gallery.deleteVectors('member', person.merchantId, [face.id]);
    } catch (error) {
      (ctx.state.log ?? deps.logger).warn({ err: error, personId: person.id, faceId }, 'gallery face removal failed');
      throw galleryUnavailable('nothing was removed');
    }
    const { imageStillUsed } = await removeFaceRow(db, principal, person, face);
    if (!imageStillUsed) await blobs.delete(face.blobKey).catch(() => undefined);
    ctx.status = 204;
  });

  /** Enrols one face from multipart field `image`; answered once the worker has stored its vector. */
  router.post('/v1/people/:id/faces', async (ctx) => {
    const { person, principal } = await memberInPath(ctx, db);
    await checkInteractiveRate(person.merchantId);
    const image = await receiveSingleImage(ctx.req, deps, personBlobPrefix(person.id));

    // The same image enrolled again (a client retrying after a timeout) answers the existing face.
    const pack = await activePack(db, config.MODEL_PACK);
    const existing = await PersonFace.query(db).where({ person_id: person.id, blob_key: image.key, pack }).first();
    if (existing) {
      ctx.status = 200;
      ctx.body = { faceId: existing.id, personId: person.id, duplicate: true };
      return;
    }

    const faceId = randomUUID();
    const result = await runInteractive(
      queues,
      'enrol',
      { personId: person.id, merchantId: person.merchantId, faceId, imageKey: image.key },
      deps.interactiveTimeoutMs,
    );
    if (!result.ok) {
      const referenced = await PersonFace.query(db).where('blob_key', image.key).resultSize();
      if (referenced === 0) await blobs.delete(image.key).catch(() => undefined);
      throw new ApiError(ENROL_STATUS[result.code] ?? 422, result.code, result.message);
    }
    await recordEnrolment(db, principal, person, result.faceId);
    ctx.status = 201;
    ctx.body = { faceId: result.faceId, personId: person.id, face: result.face };
  });
}
