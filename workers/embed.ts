/** Stage 3: align each face, embed it, estimate age and gender; faces leave in original pixels. */
import { timingsObserver } from '../src/metrics/pipeline-metrics.js';
import type { StageDefinition } from '../src/queue/stage-worker.js';
import { facesKey, writeFaces } from '../src/storage/work-files.js';
import { createDescriber, scaleFaces } from '../src/vision/index.js';
import type { WorkerContext } from './context.js';
import { loadWorkImage } from './work-image.js';

export async function embedStage({ config, blobs, metrics }: WorkerContext): Promise<StageDefinition<'embed'>> {
  const describer = await createDescriber({ modelsDir: config.modelsDir, pack: config.MODEL_PACK, threads: config.INFERENCE_THREADS });
  const observe = timingsObserver(metrics.inference, () => describer.timings, ['align', 'embed', 'attributes']);
  return {
    stage: 'embed',
    concurrency: 1,
    async handle({ captureId, run, work, faces }) {
      const described = faces.length === 0 ? [] : await describer.describe(await loadWorkImage(blobs, work), faces);
      observe(described.length);
      const key = facesKey(captureId, run);
      await writeFaces(blobs, key, scaleFaces(described, 1 / work.scale));
      return { captureId, run, facesKey: key, pack: describer.pack };
    },
  };
}
