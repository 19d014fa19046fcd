/**
 * --wait: follow this run's batches (and any already-sent capture still in progress) until every
 * capture is done or failed, then read each done capture's faces for the summary.
 */
import { mapLimit } from './files.js';
import type { ApiClient } from './http.js';
import type { Progress } from './progress.js';
import type { ErrorInfo, UploadRun } from './uploader.js';

export type CaptureDetail = {
  id: string;
  status: string;
  error?: ErrorInfo;
  faces: { match: { kind: 'member' | 'visitor'; personId?: string; visitorId?: string } | null }[];
};

export type FollowResult = { details: Map<string, CaptureDetail>; timedOut: boolean };

const FINAL = new Set(['done', 'failed']);
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export async function followRun(
  client: ApiClient,
  run: UploadRun,
  progress: Progress,
  options: { pollMs: number; timeoutMs: number; signal?: AbortSignal },
): Promise<FollowResult> {
  const status = new Map<string, { status: string; error?: ErrorInfo }>();
  for (const r of run.results) if (r.captureId && r.status) status.set(r.captureId, { status: r.status, error: r.error });
  const openBatches = new Set(run.batchIds);
  const inBatches = new Set(run.results.filter((r) => r.outcome === 'sent').map((r) => r.captureId!));
  const settledCount = () => [...status.values()].filter((s) => FINAL.has(s.status)).length;

  progress.start('processing', status.size, 0);
  progress.files(settledCount());
  const deadline = options.timeoutMs > 0 ? Date.now() + options.timeoutMs : Number.POSITIVE_INFINITY;
  let delay = Math.min(options.pollMs, 1000);
  let timedOut = false;
  for (;;) {
    const loose = [...status.entries()].filter(([id, s]) => !FINAL.has(s.status) && !inBatches.has(id)).map(([id]) => id);
    if (openBatches.size === 0 && loose.length === 0) break;
    if (Date.now() > deadline) {
      timedOut = true;
      break;
    }
    if (options.signal?.aborted) break;
    await mapLimit([...openBatches], 4, async (batchId) => {
      const batch = await client.json('GET', `/v1/batches/${batchId}`, undefined, { signal: options.signal });
      for (const c of batch.captures as { id: string; status: string; error?: ErrorInfo }[]) status.set(c.id, { status: c.status, error: c.error });
      if (batch.status === 'done') openBatches.delete(batchId);
    });
    await mapLimit(loose, 8, async (id) => {
      const capture = await client.json('GET', `/v1/captures/${id}`, undefined, { signal: options.signal });
      status.set(id, { status: capture.status, error: capture.error });
    });
    const settled = settledCount();
    progress.files(settled - progress.state.filesDone);
    if (openBatches.size === 0 && [...status.entries()].every(([id, s]) => FINAL.has(s.status) || inBatches.has(id))) continue;
    await sleep(delay, options.signal);
    delay = Math.min(options.pollMs, Math.round(delay * 1.5));
  }
  progress.finish();

  // Faces of every done capture (one read each).
  const details = new Map<string, CaptureDetail>();
  const ids = [...status.entries()].filter(([, s]) => s.status === 'done').map(([id]) => id);
  progress.start('results', ids.length, 0);
  await mapLimit(ids, 8, async (id) => {
    if (options.signal?.aborted) return;
    details.set(id, await client.json('GET', `/v1/captures/${id}`, undefined, { signal: options.signal }));
    progress.files(1);
  });
  progress.finish();
  for (const [id, s] of status) if (!details.has(id)) details.set(id, { id, status: s.status, error: s.error, faces: [] });
  for (const r of run.results) {
    const d = r.captureId ? details.get(r.captureId) : undefined;
    if (d) {
      r.status = d.status;
      if (d.error) r.error = d.error;
    }
  }
  return { details, timedOut };
}
