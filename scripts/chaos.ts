/**
 * `npm run chaos`: the whole service as `npm start` runs it, on a throwaway database and data folder,
 * a redis-server of its own and its own local Chroma, attacked one fault at a time while a robot
 * uploads labelled photos through the public API. Prints a table (accepted / done / failed / lost /
 * duplicated faces / refused / recovery time per scenario) and exits non-zero if any good capture
 * was failed, lost, duplicated or refused.
 *
 *   npm run chaos
 *   npm run chaos -- --dataset DIR --images 40 --only pipeline-1,chroma-kill,redis --deadline 600
 *   npm run chaos -- --blobs s3
 *
 * --images: photos per scenario (each scenario is a fresh batch from a device of its own).
 * --only: scenario keys: the worker processes' names (pipeline-1, …, interactive, reembed), mariadb,
 *   chroma-kill, chroma-pause, blobs, blobs-pause (with --blobs s3), redis.
 * --blobs: disk (default) or s3: blobs in an S3 test server of the run's own, which the blobs
 *   scenario stops and starts again, and blobs-pause freezes.
 * --deadline: seconds after a fault is over by which every capture must have ended (default: the
 *   sweeper's SWEEP_STALE_MS plus two SWEEP_INTERVAL_MS plus three minutes: 10 minutes by default).
 * Needs MariaDB (the machine's; only the service's own connections are killed) and redis-server.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { allScenarios, type Scenario } from './chaos/faults.js';
import { startChaosEnvironment } from './chaos/environment.js';
import type { Photo } from './chaos/robot.js';
import { passed, resultTable, runScenario, type ScenarioResult } from './chaos/run-scenario.js';
import { defaultDataset, isLabelled, readManifest } from './dataset.js';

const PHOTOS_PER_REQUEST = 10;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      dataset: { type: 'string', default: defaultDataset() },
      images: { type: 'string', default: '40' },
      only: { type: 'string' },
      deadline: { type: 'string' },
      blobs: { type: 'string', default: 'disk' },
    },
  });
  const perScenario = Number(values.images);
  if (!Number.isInteger(perScenario) || perScenario < 2) throw new Error('--images must be a whole number of at least 2');
  const photos = await labelledPhotos(values.dataset);

  const blobs = values.blobs;
  if (blobs !== 'disk' && blobs !== 's3') throw new Error(`--blobs is disk or s3, not ${blobs}`);
  const environment = await startChaosEnvironment({ code: 'compiled', blobs });
  const results: ScenarioResult[] = [];
  try {
    const { config, processes, api } = environment.service;
    const workerProcesses = processes.processNames.filter((name) => name !== 'api' && name !== 'chroma');
    const scenarios = chosen(allScenarios(workerProcesses, blobs), values.only);
    const settleMs = values.deadline ? Number(values.deadline) * 1000 : config.SWEEP_STALE_MS + 2 * config.SWEEP_INTERVAL_MS + 180_000;
    console.log(`chaos: ${scenarios.length} scenarios, ${perScenario} photos each from ${values.dataset}; captures not ended ${settleMs / 1000} s after a fault count as lost`);
    for (const [i, scenario] of scenarios.entries()) {
      await environment.ready(120_000).catch(() => console.warn('chaos: the service is still not ready; going on'));
      console.log(`chaos: ${i + 1}/${scenarios.length} ${scenario.name}…`);
      const result = await runScenario(scenario, {
        api,
        deviceKey: await environment.newDevice(`robot ${scenario.key}`),
        photos: Array.from({ length: perScenario }, (_, j) => photos[(i * perScenario + j) % photos.length]),
        perRequest: PHOTOS_PER_REQUEST,
        settleMs,
        target: environment.target,
      });
      results.push(result);
      console.log(resultTable([result]).split('\n').at(-1));
    }
  } finally {
    await environment.stop();
  }
  console.log(`\n${resultTable(results)}\n`);
  const failed = results.filter((result) => !passed(result));
  console.log(failed.length === 0 ? 'chaos: every good capture done, once' : `chaos: ${failed.length} of ${results.length} scenarios lost, failed, refused or doubled good captures`);
  return failed.length === 0 ? 0 : 1;
}

async function labelledPhotos(dataset: string): Promise<Photo[]> {
  const rows = readManifest(dataset).filter(isLabelled);
  if (rows.length === 0) throw new Error(`no labelled photo in ${dataset}/MANIFEST.tsv`);
  return Promise.all(rows.map(async (row) => ({ name: path.basename(row.path), bytes: await fs.readFile(path.join(dataset, row.path)) })));
}

function chosen(scenarios: Scenario[], only: string | undefined): Scenario[] {
  if (!only) return scenarios;
  const keys = only.split(',').map((key) => key.trim());
  const unknown = keys.filter((key) => !scenarios.some((scenario) => scenario.key === key));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${scenarios.map((scenario) => scenario.key).join(', ')}`);
  return scenarios.filter((scenario) => keys.includes(scenario.key));
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`chaos: ${error instanceof Error ? error.stack : error}`);
    process.exit(2);
  },
);
