import type { Knex } from 'knex';
import type { Config } from '../config.js';
import type { Queues } from '../queue/queues.js';
import type { BlobStore } from '../storage/blobs.js';
import { withTimeout } from './interactive.js';

/** One dependency `GET /readyz` checks; `check` throws (or times out) when it is not usable. */
export type ReadinessCheck = { name: string; check(): Promise<void> };

const CHECK_TIMEOUT_MS = 2000;

/**
 * What the API uses: MySQL, Redis, Chroma (heartbeat) and the blob store. Not the model files: the
 * API never runs a model. Replace or extend through `createApp({readiness})`.
 */
export function defaultReadinessChecks(deps: { config: Config; db: Knex; queues: Queues; blobs: BlobStore }): ReadinessCheck[] {
  return [
    { name: 'mysql', check: async () => void (await deps.db.raw('SELECT 1')) },
    {
      name: 'redis',
      check: async () => {
        // Any round trip will do; counting waiting jobs needs no extra connection.
        await deps.queues.queue('vision').getJobCounts('waiting');
      },
    },
    {
      name: 'chroma',
      check: async () => {
        const response = await fetch(new URL('/api/v2/heartbeat', deps.config.chromaUrl), { signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) });
        if (!response.ok) throw new Error(`heartbeat answered ${response.status}`);
      },
    },
    { name: 'blobs', check: () => deps.blobs.probe() },
  ];
}

export async function runReadinessChecks(checks: ReadinessCheck[]): Promise<{ ready: boolean; checks: Record<string, string> }> {
  const results = await Promise.all(
    checks.map(async ({ name, check }) => {
      try {
        await withTimeout(check(), CHECK_TIMEOUT_MS, () => new Error(`no answer within ${CHECK_TIMEOUT_MS}ms`));
        return [name, 'ok'] as const;
      } catch (error) {
        return [name, error instanceof Error ? error.message.slice(0, 200) : String(error)] as const;
      }
    }),
  );
  return { ready: results.every(([, status]) => status === 'ok'), checks: Object.fromEntries(results) };
}
