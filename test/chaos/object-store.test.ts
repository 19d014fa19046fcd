/**
 * The object store out of order while a robot uploads, blobs in an S3 test server (scripts/s3-server.ts)
 * of the run's own: stopped for 30 s (connections refused), and paused for 30 s (connections taken and
 * never answered, so only the clients' timeouts end requests). Uploads meanwhile are answered 503 and
 * sent again; the workers retry their reads; every accepted capture ends done, once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { workerGroups } from '../../src/supervisor.js';
import type { ChaosEnvironment } from '../../scripts/chaos/environment.js';
import { allScenarios } from '../../scripts/chaos/faults.js';
import type { Photo } from '../../scripts/chaos/robot.js';
import { attack, expectEveryCaptureDoneOnce, fixturePhotos, SCENARIO_TIMEOUT_MS, startTestChaos } from './support.js';

const workerProcesses = workerGroups(loadConfig().PIPELINE_PROCESSES).map((group) => group.name);
const scenarios = new Map(allScenarios(workerProcesses, 's3').map((scenario) => [scenario.key, scenario]));

let environment: ChaosEnvironment;
let photos: Photo[];

beforeAll(async () => {
  photos = await fixturePhotos();
  environment = await startTestChaos('s3');
}, 240_000);

afterAll(async () => {
  await environment?.stop();
}, 120_000);

describe('chaos, blobs in object storage: nothing lost, failed or doubled', () => {
  for (const key of ['blobs', 'blobs-pause']) {
    it(`${scenarios.get(key)!.name}: /readyz names the blob store, uploads are sent again until accepted`, { timeout: SCENARIO_TIMEOUT_MS }, async () => {
      const result = await attack(environment, scenarios.get(key)!, photos);
      expect(result.notes.some((note) => note.startsWith('skipped'))).toBe(false);
      expect(result.observed.unreadyMs.get('blobs')).toBeGreaterThan(0);
      expectEveryCaptureDoneOnce(result, photos);
    });
  }
});
