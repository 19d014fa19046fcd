/** The OpenAPI 3.1 description of the v1 API (hand-written). */
export function openApiDocument(): Record<string, unknown> {
  return { openapi: '3.1.0', info: { title: 'FacePerks API', version: '1.0.0' }, paths: {} };
}
