/**
 * What the chaos tests share: the whole service as `npm start` runs it (scripts/chaos/environment.ts)
 * with a sweeper fast enough for a test, the fixture photos (.cache/fixtures, from `npm run setup`),
 * and one scenario run on a fresh batch, whose every accepted capture must end done, once.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { expect } from 'vitest';
import { startChaosEnvironment, type BlobKind, type ChaosEnvironment } from '../../scripts/chaos/environment.js';
import type { Scenario } from '../../scripts/chaos/faults.js';
import type { Photo } from '../../scripts/chaos/robot.js';
import { resultTable, runScenario, type ScenarioResult } from '../../scripts/chaos/run-scenario.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../.cache/fixtures');
/** The sweeper runs every 2 s and re-enqueues captures untouched for 20 s, so that what Redis loses comes back within a test. */
const SWEEP = { SWEEP_INTERVAL_MS: '2000', SWEEP_STALE_MS: '20000', SWEEP_LOST_MS: '20000' };
/** How long after a fault every capture has to end: the sweeper's 20 s and a margin for a slow, shared machine. */
const SETTLE_MS = 120_000;
export const SCENARIO_TIMEOUT_MS = 360_000;

export function startTestChaos(blobs: BlobKind): Promise<ChaosEnvironment> {
  return startChaosEnvironment({ code: 'source', blobs, env: { ...SWEEP, LOG_LEVEL: 'error' } });
}

/** The six fixture photos and a half-size copy of each: twelve distinct captures per batch. */
export async function fixturePhotos(): Promise<Photo[]> {
  const names = (await fs.readdir(FIXTURES)).filter((name) => name.endsWith('.jpg')).sort();
  const originals = await Promise.all(names.map(async (name) => ({ name, bytes: await fs.readFile(path.join(FIXTURES, name)) })));
  const halves = await Promise.all(
    originals.map(async ({ name, bytes }) => ({ name: `half-${name}`, bytes: await sharp(bytes).resize({ width: 960 }).jpeg({ quality: 88 }).toBuffer() })),
  );
  return [...originals, ...halves];
}

export async function attack(environment: ChaosEnvironment, scenario: Scenario, photos: Photo[]): Promise<ScenarioResult> {
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

export function expectEveryCaptureDoneOnce(result: ScenarioResult, photos: Photo[]): void {
  const { accepted, done, failed, lost, duplicated, refused } = result;
  expect({ accepted, done, failed, lost, duplicated, refused }).toEqual({ accepted: photos.length, done: photos.length, failed: 0, lost: 0, duplicated: 0, refused: [] });
}
