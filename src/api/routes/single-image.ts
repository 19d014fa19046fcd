import type { IncomingMessage } from 'node:http';
import type { RouteDeps } from '../app.js';
import { ApiError } from '../errors.js';
import { receiveMultipart } from '../multipart.js';

/**
 * One image from multipart field `image` (enrol, identify), stored under `prefix`. Not an image,
 * too large or unreadable: the request fails with that file's status (413/415/422).
 */
export async function receiveSingleImage(
  req: IncomingMessage,
  deps: Pick<RouteDeps, 'blobs' | 'config' | 'readHeader'>,
  prefix: string,
): Promise<{ key: string; sha256: string; bytes: number }> {
  const form = await receiveMultipart(req, {
    blobs: deps.blobs,
    prefix,
    imageFields: ['image'],
    textFields: [],
    fieldsBeforeImages: false,
    maxFiles: 1,
    maxFileBytes: deps.config.MAX_UPLOAD_BYTES,
    maxTotalBytes: deps.config.MAX_UPLOAD_BYTES,
    maxPixels: deps.config.MAX_IMAGE_PIXELS,
    readHeader: deps.readHeader,
  });
  const image = form.images[0];
  if (!image) throw new ApiError(400, 'validation_error', 'send one image in the multipart field "image"');
  if (image.rejection) throw new ApiError(image.rejection.status, image.rejection.code, image.rejection.message);
  const stored = image.stored!;
  await deps.blobs.commit(stored);
  return { key: stored.key, sha256: stored.sha256, bytes: stored.bytes };
}
