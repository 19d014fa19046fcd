/**
 * What the chaos tests share: the whole service as `npm start` runs it (scripts/chaos/environment.ts)
 * with a sweeper fast enough for a test, started before a file's tests and stopped after them; the
 * fixture photos (.cache/fixtures, from `npm run setup`); and one scenario run on a fresh batch,
 * whose every accepted capture must end done, once.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, expect } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { workerGroups } from '../../src/supervisor.js';
import { startChaosEnvironment, type BlobKind, type ChaosEnvironment } from '../../scripts/chaos/environment.js';
import { allScenarios, type Scenario } from '../../scripts/chaos/faults.js';
import type { Photo } from '../../scripts/chaos/robot.js';
import { resultTable, runScenario, type ScenarioResult } from '../../scripts/chaos/run-scenario.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../.cache/fixtures');
/** The sweeper runs every 2 s and re-enqueues captures untouched for 20 s, so that what Redis loses comes back within a test. */
const SWEEP = { SWEEP_INTERVAL_MS: '2000', SWEEP_STALE_MS: '20000', SWEEP_LOST_MS: '20000' };
/** How long after a fault every capture has to end: the sweeper's 20 s and a margin for a slow, shared machine. */
const SETTLE_MS = 120_000;
export const SCENARIO_TIMEOUT_MS = 360_000;

/** The supervised worker processes' names, as `npm start` runs them. */
export const workerProcesses = workerGroups(loadConfig().PIPELINE_PROCESSES).map((group) => group.name);

export type ChaosSuite = {
  /** The scenario with this `--only` key. */
  scenario(key: string): Scenario;
  /** Runs the scenario on a fresh batch of the fixture photos, and prints its row. */
  attack(scenario: Scenario): Promise<ScenarioResult>;
  expectEveryCaptureDoneOnce(result: ScenarioResult): void;
};

/** The chaos environment for this file's tests, blobs on disk or in an S3 test server. */
export function chaosSuite(blobs: BlobKind): ChaosSuite {
  const scenarios = new Map(allScenarios(workerProcesses, blobs).map((scenario) => [scenario.key, scenario]));
  let environment: ChaosEnvironment | undefined;
  let photos: Photo[] = [];
  beforeAll(async () => {
    photos = await fixturePhotos();
    environment = await startChaosEnvironment({ code: 'source', blobs, env: { ...SWEEP, LOG_LEVEL: 'error' } });
  }, 240_000);
  afterAll(async () => {
    await environment?.stop();
  }, 120_000);
  return {
    scenario(key) {
      const scenario = scenarios.get(key);
      if (!scenario) throw new Error(`no chaos scenario ${key}`);
      return scenario;
    },
    attack: (scenario) => attack(environment!, scenario, photos),
    expectEveryCaptureDoneOnce(result) {
      const { accepted, done, failed, lost, duplicated, refused } = result;
      expect({ accepted, done, failed, lost, duplicated, refused }).toEqual({ accepted: photos.length, done: photos.length, failed: 0, lost: 0, duplicated: 0, refused: [] });
    },
  };
}

/** The six fixture photos and a half-size copy of each: twelve distinct captures per batch. */
async function fixturePhotos(): Promise<Photo[]> {
  const names = (await fs.readdir(FIXTURES)).filter((name) => name.endsWith('.jpg')).sort();
  const originals = await Promise.all(names.map(async (name) => ({ name, bytes: await fs.readFile(path.join(FIXTURES, name)) })));
  const halves = await Promise.all(
    originals.map(async ({ name, bytes }) => ({ name: `half-${name}`, bytes: await sharp(bytes).resize({ width: 960 }).jpeg({ quality: 88 }).toBuffer() })),
  );
  return [...originals, ...halves];
}

async function attack(environment: ChaosEnvironment, scenario: Scenario, photos: Photo[]): Promise<ScenarioResult> {
  await environment.ready(120_000);
  const result = await runScenario(scenario, {
    api: environment.service.api,
    deviceKey: await environment.newDevice(`robot ${scenario.key}`),
    photos,
    perRequest: 6,
    settleMs: SETTLE_MS,
    target: environment.target,
  });
  console.log(resultTable([result]));
  return result;
}
