import fs from 'node:fs/promises';
import path from 'node:path';
import type { Knex } from 'knex';
import type { Config } from '../config.js';
import type { Queues } from '../queue/queues.js';
import { withTimeout } from './interactive.js';

/** One dependency `GET /readyz` checks; `check` throws (or times out) when it is not usable. */
export type ReadinessCheck = { name: string; check(): Promise<void> };

const CHECK_TIMEOUT_MS = 2000;

async function hasModelFile(dir: string, depth = 2): Promise<boolean> {
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  for (const entry of entries) {
    if (entry.isFile() && entry.name.endsWith('.onnx')) return true;
    if (entry.isDirectory() && depth > 0 && (await hasModelFile(path.join(dir, entry.name), depth - 1))) return true;
  }
  return false;
}

/** MySQL, Redis, Chroma (heartbeat) and the model files. Replace or extend through `createApp({readiness})`. */
export function defaultReadinessChecks(deps: { config: Config; db: Knex; queues: Queues }): ReadinessCheck[] {
  return [
    { name: 'mysql', check: async () => void (await deps.db.raw('SELECT 1')) },
    {
      name: 'redis',
      check: async () => {
        // Any round trip will do; counting waiting jobs needs no extra connection.
        await deps.queues.queue('preprocess').getJobCounts('waiting');
      },
    },
    {
      name: 'chroma',
      check: async () => {
        const response = await fetch(new URL('/api/v2/heartbeat', deps.config.chromaUrl), { signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) });
        if (!response.ok) throw new Error(`heartbeat answered ${response.status}`);
      },
    },
    {
      name: 'models',
      check: async () => {
        if (!(await hasModelFile(deps.config.modelsDir))) throw new Error(`no model files under ${deps.config.modelsDir} (run npm run setup)`);
      },
    },
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
