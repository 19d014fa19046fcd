/**
 * Intermediate artefacts a capture's stages hand to each other through the blob store (never
 * through Redis): the oriented working image, and the described faces with their embeddings.
 */
import type { DescribedFace } from '../vision/types.js';
import type { BlobStore } from './blobs.js';

export const workImageKey = (captureId: string, run: number) => `work/${captureId}-${run}.rgb`;
export const facesKey = (captureId: string, run: number) => `work/${captureId}-${run}.faces.json`;

/** A described face in original-image pixels. */
export type StoredFace = Omit<DescribedFace, 'embedding'> & { embedding: Float32Array };

type SerialisedFace = Omit<StoredFace, 'embedding'> & { embedding: string };

export async function writeFaces(blobs: BlobStore, key: string, faces: StoredFace[]): Promise<void> {
  const serialised: SerialisedFace[] = faces.map((face) => ({
    ...face,
    embedding: Buffer.from(face.embedding.buffer, face.embedding.byteOffset, face.embedding.byteLength).toString('base64'),
  }));
  await blobs.put(key, JSON.stringify(serialised));
}

export async function readFaces(blobs: BlobStore, key: string): Promise<StoredFace[]> {
  const serialised = JSON.parse((await blobs.get(key)).toString('utf8')) as SerialisedFace[];
  return serialised.map((face) => {
    const bytes = Buffer.from(face.embedding, 'base64');
    const embedding = new Float32Array(bytes.byteLength / 4);
    new Uint8Array(embedding.buffer).set(bytes);
    return { ...face, embedding };
  });
}

export async function deleteWorkFiles(blobs: BlobStore, captureId: string, run: number): Promise<void> {
  await Promise.all([blobs.delete(workImageKey(captureId, run)), blobs.delete(facesKey(captureId, run))]);
}
