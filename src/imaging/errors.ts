/** Why an upload cannot be turned into pixels. Every one of these is permanent: retrying cannot help. */
export type ImageErrorCode = 'unsupported_format' | 'truncated' | 'empty' | 'too_large';

export class ImageError extends Error {
  constructor(
    readonly code: ImageErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ImageError';
  }
}
