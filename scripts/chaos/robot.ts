/**
 * A store robot's upload loop: photos go up in multipart requests (`images` parts) and whatever the
 * server says to send again later — 429, any 5xx (503/507 with Retry-After when the blob store is out),
 * a dropped connection — is sent again, as a robot buffering offline would, until a deadline.
 */
export type Photo = { name: string; bytes: Buffer };

/** A photo the service never accepted: refused as bad input (its error code), or still unsent at the deadline. */
export type Refusal = { name: string; code: string };

export type UploadResult = { captureIds: string[]; refused: Refusal[]; retries: number; retryStatuses: Set<string> };

type Accepted = { captures: { id: string; index: number }[]; rejected: { index: number; error: { code: string } }[] };

/** How long a robot waits when the server names no delay, and at most whatever it names. */
const DEFAULT_RETRY_MS = 1000;
const MAX_RETRY_MS = 120_000;
const REQUEST_TIMEOUT_MS = 60_000;

export async function uploadLikeARobot(api: string, deviceKey: string, photos: Photo[], perRequest: number, deadline: number): Promise<UploadResult> {
  const result: UploadResult = { captureIds: [], refused: [], retries: 0, retryStatuses: new Set() };
  for (let i = 0; i < photos.length; i += perRequest) {
    const chunk = photos.slice(i, i + perRequest);
    for (;;) {
      const answer = await send(api, deviceKey, chunk);
      if (answer.kind === 'accepted') {
        result.captureIds.push(...answer.body.captures.map((capture) => capture.id));
        result.refused.push(...answer.body.rejected.map((rejection) => ({ name: chunk[rejection.index].name, code: rejection.error.code })));
        break;
      }
      if (answer.kind === 'refused') {
        result.refused.push(...chunk.map((photo) => ({ name: photo.name, code: answer.code })));
        break;
      }
      if (Date.now() + answer.retryInMs > deadline) {
        result.refused.push(...chunk.map((photo) => ({ name: photo.name, code: `still ${answer.status} at the deadline` })));
        break;
      }
      result.retries++;
      result.retryStatuses.add(answer.status);
      await new Promise((resolve) => setTimeout(resolve, answer.retryInMs));
    }
  }
  return result;
}

type Answer = { kind: 'accepted'; body: Accepted } | { kind: 'refused'; code: string } | { kind: 'retry'; status: string; retryInMs: number };

async function send(api: string, deviceKey: string, photos: Photo[]): Promise<Answer> {
  const form = new FormData();
  for (const photo of photos) form.append('images', new Blob([new Uint8Array(photo.bytes)]), photo.name);
  let response: Response;
  try {
    response = await fetch(`${api}/v1/captures`, {
      method: 'POST',
      headers: { authorization: `Bearer ${deviceKey}` },
      body: form,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    return { kind: 'retry', status: (error as Error).name === 'TimeoutError' ? 'timeout' : 'no connection', retryInMs: DEFAULT_RETRY_MS };
  }
  const body = (await response.json().catch(() => ({}))) as Accepted & { error?: { code?: string } };
  if (response.status === 202) return { kind: 'accepted', body };
  if (response.status === 429 || response.status >= 500) {
    const named = Number(response.headers.get('retry-after'));
    const retryInMs = Number.isFinite(named) && named > 0 ? Math.min(named * 1000, MAX_RETRY_MS) : DEFAULT_RETRY_MS;
    return { kind: 'retry', status: String(response.status), retryInMs };
  }
  return { kind: 'refused', code: `${response.status} ${body.error?.code ?? ''}`.trim() };
}
