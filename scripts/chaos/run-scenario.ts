/**
 * One chaos scenario on a fresh batch: a robot uploads half its photos, the fault strikes once the
 * pipeline is under way, the other half is uploaded while it lasts, and every accepted capture must
 * then end `done` (never `failed`, never stuck) with its faces written once.
 */
import type { ChaosTarget, Scenario } from './faults.js';
import { uploadLikeARobot, type Photo, type Refusal } from './robot.js';
import { tallyCaptures } from './tally.js';
import { watchService, type Observed } from './watch.js';

export type ScenarioRun = {
  api: string;
  /** A device of its own: its photos are new captures even if an earlier scenario sent the same ones. */
  deviceKey: string;
  photos: Photo[];
  /** Photos per upload request. */
  perRequest: number;
  /** How long after the fault is over every capture has to end done or failed before the rest count as lost. */
  settleMs: number;
  target: ChaosTarget;
};

export type ScenarioResult = {
  scenario: string;
  accepted: number;
  done: number;
  failed: number;
  /** Accepted, but neither done nor failed by the deadline. */
  lost: number;
  duplicated: number;
  /** Good photos the service never accepted. */
  refused: Refusal[];
  /** From the end of the fault until the last capture ended; undefined when some never did. */
  recoveryMs?: number;
  observed: Observed;
  notes: string[];
};

/** How long the first half may take to start through the pipeline before the fault strikes anyway. */
const UNDER_WAY_TIMEOUT_MS = 120_000;
const POLL_MS = 500;

export async function runScenario(scenario: Scenario, run: ScenarioRun): Promise<ScenarioResult> {
  const { api, deviceKey, photos, perRequest, settleMs, target } = run;
  const notes: string[] = [];
  const half = Math.ceil(photos.length / 2);
  const uploadDeadline = Date.now() + settleMs + UNDER_WAY_TIMEOUT_MS;
  const first = await uploadLikeARobot(api, deviceKey, photos.slice(0, half), perRequest, uploadDeadline);
  if (!(await underWay(run, first.captureIds))) notes.push('fault struck before any capture ended');

  const watch = watchService(api, target.processes);
  let clearedAt = Date.now();
  const [note, second] = await Promise.all([
    scenario.inject(target).then((note) => {
      clearedAt = Date.now();
      return note;
    }),
    uploadLikeARobot(api, deviceKey, photos.slice(half), perRequest, uploadDeadline),
  ]);
  if (note) notes.push(note);
  const captureIds = [...new Set([...first.captureIds, ...second.captureIds])];
  const retries = first.retries + second.retries;
  if (retries > 0) notes.push(`${retries} upload requests retried (${[...new Set([...first.retryStatuses, ...second.retryStatuses])].join(', ')})`);

  let tally = await tallyCaptures(target.db, captureIds);
  while (tally.pending > 0 && Date.now() < clearedAt + settleMs) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    tally = await tallyCaptures(target.db, captureIds);
  }
  const endedAt = Date.now();
  const observed = await watch.stop();
  for (const [code, count] of tally.failures) notes.push(`failed ${code}: ${count}`);
  return {
    scenario: scenario.name,
    accepted: captureIds.length,
    done: tally.done,
    failed: tally.failed,
    lost: tally.pending,
    duplicated: tally.duplicated,
    refused: [...first.refused, ...second.refused],
    recoveryMs: tally.pending === 0 ? Math.max(0, endedAt - clearedAt) : undefined,
    observed,
    notes,
  };
}

/** Whether a scenario lost, failed, refused or doubled any good capture. */
export function passed(result: ScenarioResult): boolean {
  return result.failed === 0 && result.lost === 0 && result.duplicated === 0 && result.refused.length === 0;
}

/** Waits until some capture of the batch has ended, so that the fault strikes mid-batch. */
async function underWay(run: ScenarioRun, captureIds: string[]): Promise<boolean> {
  const deadline = Date.now() + UNDER_WAY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const tally = await tallyCaptures(run.target.db, captureIds);
    if (tally.done + tally.failed > 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** The results as a Markdown table, one row per scenario. */
export function resultTable(results: ScenarioResult[]): string {
  const seconds = (ms: number | undefined) => (ms === undefined ? 'never' : `${(ms / 1000).toFixed(1)} s`);
  const rows = results.map((r) => {
    const seen = [
      ...(r.observed.deaths.length ? [`died: ${r.observed.deaths.join(', ')}`] : []),
      ...(r.observed.unreadyMs.size ? [`/readyz unready: ${[...r.observed.unreadyMs].map(([check, ms]) => `${check} ${seconds(ms)}`).join(', ')}`] : []),
      ...r.notes,
      ...(r.refused.length ? [`refused: ${[...new Set(r.refused.map((refusal) => refusal.code))].join(', ')}`] : []),
    ];
    const verdict = passed(r) ? 'ok' : '**FAIL**';
    return `| ${r.scenario} | ${r.accepted} | ${r.done} | ${r.failed} | ${r.lost} | ${r.duplicated} | ${r.refused.length} | ${seconds(r.recoveryMs)} | ${verdict} | ${seen.join('; ')} |`;
  });
  return [
    '| scenario | accepted | done | failed | lost | duplicated faces | refused | recovery | verdict | seen |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
    ...rows,
  ].join('\n');
}
