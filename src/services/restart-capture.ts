import type { Queues } from '../queue/queues.js';
import type { CaptureLifecycle } from '../storage/capture-lifecycle.js';

/**
 * Starts a capture over from the vision stage under a new run (see CaptureLifecycle.restart);
 * false when another restarter won, or (`onlyIfOpen`) the capture finished meanwhile.
 */
export async function restartCapture(
  deps: { lifecycle: CaptureLifecycle; queues: Queues },
  capture: { id: string; run: number },
  options: { onlyIfOpen: boolean },
): Promise<boolean> {
  const run = await deps.lifecycle.restart(capture, options);
  if (run === undefined) return false;
  await deps.queues.enqueue('vision', { captureId: capture.id, run });
  return true;
}
