/**
 * Face crops, opt-in per merchant (`keepFaceCrops`, off by default): a 112x112 aligned JPEG of each
 * face enrolled, recognised as a member, or of a visitor from its second visit on, kept in the blob
 * store so a merchant can show who a member or a returning visitor is. The pixels are cropped where
 * they were decoded (the vision stage, for every face: it cannot know yet whose it is; enrolment);
 * once the capture's results are saved, the crops of faces of visitors with a single visit are
 * dropped. This module names, reads and deletes them. A crop goes with its subject:
 * member erasure, removal of the enrolled face, retention's visitor purge, and every crop of the
 * merchant when it turns the setting off.
 */
import type { Knex } from 'knex';
import { faceIdOf, type FaceMatch } from '../queue/contract.js';
import type { BlobStore } from '../storage/blobs.js';
import { faceOwner, memberFaceIds, setKeepFaceCrops, visitorFaceIds, visitorVisits } from '../storage/repositories/face-crops.js';
import type { Principal } from '../storage/repositories/principal.js';

type Deps = { db: Knex; blobs: BlobStore };

const merchantPrefix = (merchantId: string) => `crops/${merchantId}`;

/** One key per face: a captured face's id (faceIdOf) or an enrolled face's id. */
export const faceCropKey = (merchantId: string, faceId: string) => `${merchantPrefix(merchantId)}/${faceId}.jpg`;

/** Turning the setting off deletes every crop kept (again on a retry, if a deletion failed). */
export async function updateKeepFaceCrops({ db, blobs }: Deps, merchantId: string, keep: boolean): Promise<void> {
  await setKeepFaceCrops(db, merchantId, keep);
  if (!keep) await blobs.deletePrefix(merchantPrefix(merchantId));
}

/** The crop of a face the principal may see, if its merchant keeps crops and one was kept. */
export async function readFaceCrop({ db, blobs }: Deps, faceId: string, principal: Principal): Promise<Buffer | undefined> {
  const owner = await faceOwner(db, faceId, principal);
  if (!owner?.keepsCrops) return undefined;
  try {
    return await blobs.get(faceCropKey(owner.merchantId, faceId));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

export async function deleteFaceCrops(blobs: BlobStore, merchantId: string, faceIds: string[]): Promise<void> {
  for (const faceId of faceIds) await blobs.delete(faceCropKey(merchantId, faceId));
}

/**
 * After the results of a capture whose crops the vision stage kept are saved: a passer-by seen on
 * one visit leaves no crop; a returning visitor keeps those of its later visits. Idempotent, so a
 * redelivered job may run it again.
 */
export async function dropOneVisitCrops({ db, blobs }: Deps, capture: { id: string; merchant_id: string }, matches: FaceMatch[]): Promise<void> {
  const visitorFaces = matches.filter((match) => match.kind === 'visitor');
  if (visitorFaces.length === 0) return;
  const visits = await visitorVisits(db, capture.merchant_id, visitorFaces.map((match) => match.subjectId));
  const oneVisit = visitorFaces.filter((match) => (visits.get(match.subjectId) ?? 0) < 2);
  await deleteFaceCrops(blobs, capture.merchant_id, oneVisit.map((match) => faceIdOf(capture.id, match.faceIndex)));
}

/** Before the member's rows go (they name its faces). */
export async function deleteMemberCrops({ db, blobs }: Deps, member: { id: string; merchantId: string }): Promise<void> {
  await deleteFaceCrops(blobs, member.merchantId, await memberFaceIds(db, member.id));
}

/** Before the visitor's row goes (its faces' link to it is cleared with it). */
export async function deleteVisitorCrops({ db, blobs }: Deps, visitor: { id: string; merchantId: string }): Promise<void> {
  await deleteFaceCrops(blobs, visitor.merchantId, await visitorFaceIds(db, [visitor.id]));
}
