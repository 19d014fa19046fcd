/**
 * Face crops, opt-in per merchant (`keepFaceCrops`, off by default): a 112x112 aligned JPEG of each
 * face the vision stage sees and each face enrolled, kept in the blob store so a merchant can show
 * who a member or a returning visitor is. The pixels are cropped where they were decoded (the vision
 * stage, enrolment); this module names, reads and deletes them. A crop goes with its subject:
 * member erasure, removal of the enrolled face, retention's visitor purge, and every crop of the
 * merchant when it turns the setting off.
 */
import type { Knex } from 'knex';
import type { BlobStore } from '../storage/blobs.js';
import { faceOwner, memberFaceIds, setKeepFaceCrops, visitorFaceIds } from '../storage/repositories/face-crops.js';
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

/** Before the member's rows go (they name its faces). */
export async function deleteMemberCrops({ db, blobs }: Deps, member: { id: string; merchantId: string }): Promise<void> {
  await deleteFaceCrops(blobs, member.merchantId, await memberFaceIds(db, member.id));
}

/** Before the visitor's row goes (its faces' link to it is cleared with it). */
export async function deleteVisitorCrops({ db, blobs }: Deps, visitor: { id: string; merchantId: string }): Promise<void> {
  await deleteFaceCrops(blobs, visitor.merchantId, await visitorFaceIds(db, [visitor.id]));
}
