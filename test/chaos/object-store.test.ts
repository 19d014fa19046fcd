/**
 * The object store out of order while a robot uploads, blobs in an S3 test server (scripts/s3-server.ts)
 * of the run's own: stopped for 30 s (connections refused), and paused for 30 s (connections taken and
 * never answered, so only the clients' timeouts end requests). Uploads meanwhile are answered 503 and
 * sent again; the workers retry their reads; every accepted capture ends done, once.
 */
import { describe, expect, it } from 'vitest';
import { chaosSuite, SCENARIO_TIMEOUT_MS } from './support.js';

const chaos = chaosSuite('s3');

describe('chaos, blobs in object storage: nothing lost, failed or doubled', () => {
  for (const key of ['blobs', 'blobs-pause']) {
    it(`${chaos.scenario(key).name}: /readyz names the blob store, uploads are sent again until accepted`, { timeout: SCENARIO_TIMEOUT_MS }, async () => {
      const result = await chaos.attack(chaos.scenario(key));
      expect(result.notes.some((note) => note.startsWith('skipped'))).toBe(false);
      expect(result.observed.unreadyMs.get('blobs')).toBeGreaterThan(0);
      chaos.expectEveryCaptureDoneOnce(result);
    });
  }
});
