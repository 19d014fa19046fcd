/**
 * `npm run chaos`'s scenarios on the fixture photos (.cache/fixtures, from `npm run setup`): the whole
 * service as `npm start` runs it, on a redis-server and a Chroma of its own, attacked one fault at a
 * time while a robot uploads (test/chaos/support.ts). Blobs on local disk here; in object storage
 * in object-store.test.ts. Left to `npm run chaos`: the 60 s Chroma pause, and the kills of the second and further pipeline
 * processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { workerGroups } from '../../src/supervisor.js';
import type { ChaosEnvironment } from '../../scripts/chaos/environment.js';
import { allScenarios, type Scenario } from '../../scripts/chaos/faults.js';
import type { Photo } from '../../scripts/chaos/robot.js';
import { attack, expectEveryCaptureDoneOnce, fixturePhotos, SCENARIO_TIMEOUT_MS, startTestChaos } from './support.js';

const workerProcesses = workerGroups(loadConfig().PIPELINE_PROCESSES).map((group) => group.name);
const scenarios = new Map(allScenarios(workerProcesses).map((scenario) => [scenario.key, scenario]));
/** One process of each kind: pipeline-2 is pipeline-1 again, and each of their kills costs a minute (the killed jobs' locks expire). */
const kindOf = (name: string) => name.replace(/-\d+$/, '');
const killed = workerProcesses.filter((name, i) => workerProcesses.findIndex((other) => kindOf(other) === kindOf(name)) === i);

let environment: ChaosEnvironment;
let photos: Photo[];

const attackWith = (scenario: Scenario) => attack(environment, scenario, photos);
const expectDone = (result: Awaited<ReturnType<typeof attack>>) => expectEveryCaptureDoneOnce(result, photos);

beforeAll(async () => {
  photos = await fixturePhotos();
  environment = await startTestChaos('disk');
}, 240_000);

afterAll(async () => {
  await environment?.stop();
}, 120_000);

describe('chaos: nothing lost, failed or doubled under faults', () => {
  for (const name of killed) {
    it(`kill -9 ${name}: the supervisor restarts it and the batch ends done`, { timeout: SCENARIO_TIMEOUT_MS }, async () => {
      const result = await attackWith(scenarios.get(name)!);
      expect(result.observed.deaths).toContain(`${name} (SIGKILL)`);
      expectDone(result);
    });
  }

  it('MariaDB connections killed', { timeout: SCENARIO_TIMEOUT_MS }, async () => {
    expectDone(await attackWith(scenarios.get('mariadb')!));
  });

  it('Chroma killed: restarted by the supervisor, /readyz says chroma meanwhile', { timeout: SCENARIO_TIMEOUT_MS }, async () => {
    const result = await attackWith(scenarios.get('chroma-kill')!);
    expect(result.observed.deaths).toContain('chroma (SIGKILL)');
    expect(result.observed.unreadyMs.get('chroma')).toBeGreaterThan(0);
    expectDone(result);
  });

  it('blob store unwritable 30 s: uploads are retried until accepted', { timeout: SCENARIO_TIMEOUT_MS }, async () => {
    expectDone(await attackWith(scenarios.get('blobs')!));
  });

  it('Redis restarted empty', { timeout: SCENARIO_TIMEOUT_MS }, async () => {
    expectDone(await attackWith(scenarios.get('redis')!));
  });

});
