/** Stage 2: face boxes, scores and five landmarks on the working image. */
import { timingsObserver } from '../src/metrics/pipeline-metrics.js';
import type { StageDefinition } from '../src/queue/stage-worker.js';
import { createDetector } from '../src/vision/index.js';
import type { WorkerContext } from './context.js';
import { loadWorkImage } from './work-image.js';

export async function detectStage({ config, blobs, metrics }: WorkerContext): Promise<StageDefinition<'detect'>> {
  const detector = await createDetector({
    modelsDir: config.modelsDir,
    pack: config.MODEL_PACK,
    threads: config.INFERENCE_THREADS,
    detectThreshold: config.DETECT_THRESHOLD,
  });
  const observe = timingsObserver(metrics.inference, () => detector.timings, ['detect', 'landmarks']);
  return {
    stage: 'detect',
    // onnxruntime's run() blocks this process's event loop: one job at a time per process.
    concurrency: 1,
    async handle({ captureId, run, work }) {
      const faces = await detector.detect(await loadWorkImage(blobs, work));
      observe();
      return { captureId, run, work, faces };
    },
  };
}
