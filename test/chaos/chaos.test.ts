/**
 * `npm run chaos`'s scenarios on the fixture photos (.cache/fixtures, from `npm run setup`): the whole
 * service as `npm start` runs it, on a redis-server and a Chroma of its own, attacked one fault at a
 * time while a robot uploads (test/chaos/support.ts). Blobs on local disk here; in object storage
 * in object-store.test.ts. Left to `npm run chaos`: the 60 s Chroma pause, and the kills of the
 * second and further pipeline processes.
 */
import { describe, expect, it } from 'vitest';
import { chaosSuite, SCENARIO_TIMEOUT_MS, workerProcesses } from './support.js';

/** One process of each kind: pipeline-2 is pipeline-1 again, and each of their kills costs a minute (the killed jobs' locks expire). */
const kindOf = (name: string) => name.replace(/-\d+$/, '');
const killed = workerProcesses.filter((name, i) => workerProcesses.findIndex((other) => kindOf(other) === kindOf(name)) === i);

const chaos = chaosSuite('disk');

describe('chaos: nothing lost, failed or doubled under faults', () => {
  for (const name of killed) {
    it(`kill -9 ${name}: the supervisor restarts it and the batch ends done`, { timeout: SCENARIO_TIMEOUT_MS }, async () => {
      const result = await chaos.attack(chaos.scenario(name));
      expect(result.observed.deaths).toContain(`${name} (SIGKILL)`);
      chaos.expectEveryCaptureDoneOnce(result);
    });
  }

  it('MariaDB connections killed', { timeout: SCENARIO_TIMEOUT_MS }, async () => {
    chaos.expectEveryCaptureDoneOnce(await chaos.attack(chaos.scenario('mariadb')));
  });

  it('Chroma killed: restarted by the supervisor, /readyz says chroma meanwhile', { timeout: SCENARIO_TIMEOUT_MS }, async () => {
    const result = await chaos.attack(chaos.scenario('chroma-kill'));
    expect(result.observed.deaths).toContain('chroma (SIGKILL)');
    expect(result.observed.unreadyMs.get('chroma')).toBeGreaterThan(0);
    chaos.expectEveryCaptureDoneOnce(result);
  });

  it('blob store unwritable 30 s: uploads are retried until accepted', { timeout: SCENARIO_TIMEOUT_MS }, async () => {
    chaos.expectEveryCaptureDoneOnce(await chaos.attack(chaos.scenario('blobs')));
  });

  it('Redis restarted empty', { timeout: SCENARIO_TIMEOUT_MS }, async () => {
    chaos.expectEveryCaptureDoneOnce(await chaos.attack(chaos.scenario('redis')));
  });

});
