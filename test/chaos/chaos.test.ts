/**
 * `npm run chaos`'s scenarios on the fixture photos (.cache/fixtures, from `npm run setup`): the whole
 * service as `npm start` runs it, on a redis-server and a Chroma of its own, attacked one fault at a
 * time while a robot uploads. Every accepted capture must end done, once. The sweeper runs every 2 s
 * and re-enqueues captures untouched for 20 s, so that what Redis loses comes back within the test.
 * Left to `npm run chaos`: the 60 s Chroma pause, and the kills of the second and further pipeline
 * processes.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { workerGroups } from '../../src/supervisor.js';
import { startChaosEnvironment, type ChaosEnvironment } from '../../scripts/chaos/environment.js';
import { allScenarios, type Scenario } from '../../scripts/chaos/faults.js';
import type { Photo } from '../../scripts/chaos/robot.js';
import { resultTable, runScenario, type ScenarioResult } from '../../scripts/chaos/run-scenario.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../.cache/fixtures');
const SWEEP = { SWEEP_INTERVAL_MS: '2000', SWEEP_STALE_MS: '20000', SWEEP_LOST_MS: '20000' };
/** How long after a fault every capture has to end: the sweeper's 20 s and a margin for a slow, shared machine. */
const SETTLE_MS = 120_000;
const SCENARIO_TIMEOUT_MS = 360_000;

const workerProcesses = workerGroups(loadConfig().PIPELINE_PROCESSES).map((group) => group.name);
const scenarios = new Map(allScenarios(workerProcesses).map((scenario) => [scenario.key, scenario]));
/** One process of each kind: pipeline-2 is pipeline-1 again, and each of their kills costs a minute (the killed jobs' locks expire). */
const kindOf = (name: string) => name.replace(/-\d+$/, '');
const killed = workerProcesses.filter((name, i) => workerProcesses.findIndex((other) => kindOf(other) === kindOf(name)) === i);

let environment: ChaosEnvironment;
let photos: Photo[];

/** The six fixture photos and a half-size copy of each: twelve distinct captures per batch. */
async function fixturePhotos(): Promise<Photo[]> {
  const names = (await fs.readdir(FIXTURES)).filter((name) => name.endsWith('.jpg')).sort();
  const originals = await Promise.all(names.map(async (name) => ({ name, bytes: await fs.readFile(path.join(FIXTURES, name)) })));
  const halves = await Promise.all(
    originals.map(async ({ name, bytes }) => ({ name: `half-${name}`, bytes: await sharp(bytes).resize({ width: 960 }).jpeg({ quality: 88 }).toBuffer() })),
  );
  return [...originals, ...halves];
}

async function attack(scenario: Scenario): Promise<ScenarioResult> {
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

function expectEveryCaptureDoneOnce(result: ScenarioResult): void {
  const { accepted, done, failed, lost, duplicated, refused } = result;
  expect({ accepted, done, failed, lost, duplicated, refused }).toEqual({ accepted: photos.length, done: photos.length, failed: 0, lost: 0, duplicated: 0, refused: [] });
}

beforeAll(async () => {
  photos = await fixturePhotos();
  environment = await startChaosEnvironment({ code: 'source', env: { ...SWEEP, LOG_LEVEL: 'error' } });
}, 240_000);

afterAll(async () => {
  await environment?.stop();
}, 120_000);

describe('chaos: nothing lost, failed or doubled under faults', () => {
  for (const name of killed) {
    it(`kill -9 ${name}: the supervisor restarts it and the batch ends done`, { timeout: SCENARIO_TIMEOUT_MS }, async () => {
      const result = await attack(scenarios.get(name)!);
      expect(result.observed.deaths).toContain(`${name} (SIGKILL)`);
      expectEveryCaptureDoneOnce(result);
    });
  }

  it('MariaDB connections killed', { timeout: SCENARIO_TIMEOUT_MS }, async () => {
    expectEveryCaptureDoneOnce(await attack(scenarios.get('mariadb')!));
  });

  it('Chroma killed: restarted by the supervisor, /readyz says chroma meanwhile', { timeout: SCENARIO_TIMEOUT_MS }, async () => {
    const result = await attack(scenarios.get('chroma-kill')!);
    expect(result.observed.deaths).toContain('chroma (SIGKILL)');
    expect(result.observed.unreadyMs.get('chroma')).toBeGreaterThan(0);
    expectEveryCaptureDoneOnce(result);
  });

  it('blob store unwritable 30 s: uploads are retried until accepted', { timeout: SCENARIO_TIMEOUT_MS }, async () => {
    expectEveryCaptureDoneOnce(await attack(scenarios.get('blobs')!));
  });

  it('Redis restarted empty', { timeout: SCENARIO_TIMEOUT_MS }, async () => {
    expectEveryCaptureDoneOnce(await attack(scenarios.get('redis')!));
  });

});
