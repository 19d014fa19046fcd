/** What the merge, link, undo and reject routes share: the identity service's dependencies and its refusals as HTTP answers. */
import { GalleryUnavailable, IdentityChangeRefused, type IdentityDeps } from '../../services/identity.js';
import type { RouteDeps } from '../app.js';
import { ApiError } from '../errors.js';

/** The face gallery, which identity changes need (they move or add vectors): 503 without one. */
export function galleryOf(deps: RouteDeps): NonNullable<RouteDeps['gallery']> {
  if (!deps.gallery) throw new ApiError(503, 'gallery_unavailable', 'this change moves face vectors and needs the face gallery, which this API process is not connected to');
  return deps.gallery;
}

export function identityDeps(deps: RouteDeps): IdentityDeps {
  return {
    db: deps.db,
    gallery: galleryOf(deps),
    visitGapMinutes: deps.config.VISIT_GAP_MINUTES,
    perks: { points: deps.config.PERK_POINTS, cooldownMinutes: deps.config.PERK_COOLDOWN_MINUTES },
  };
}

const STATUS: Record<IdentityChangeRefused['reason'], number> = {
  visitor_gone: 404,
  person_gone: 404,
  entry_gone: 404,
  same_visitor: 422,
  not_undoable: 422,
  undo_stale: 409,
  already_undone: 409,
  points_spent: 409,
  not_matched: 422,
  no_embedding: 422,
  face_moved: 409,
};

/** Runs the change; a refusal becomes its status, a gallery outage 503 (sent again, the request finishes what it started). */
export async function answering<T>(change: () => Promise<T>): Promise<T> {
  try {
    return await change();
  } catch (error) {
    if (error instanceof IdentityChangeRefused) {
      const code = error.reason.endsWith('_gone') ? 'not_found' : error.reason === 'points_spent' ? 'undo_stale' : error.reason;
      throw new ApiError(STATUS[error.reason], code, error.message);
    }
    if (error instanceof GalleryUnavailable) {
      const outcome = error.done ? 'the change is recorded but its face vectors did not move; send the same request again to finish it' : 'nothing was changed';
      throw new ApiError(503, 'gallery_unavailable', `the face gallery is unavailable; ${outcome}`, undefined, { 'Retry-After': '5' });
    }
    throw error;
  }
}
