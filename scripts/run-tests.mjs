// Runs vitest and ends with one summary line; a run that executed no test fails.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'faceperks-tests-')), 'report.json');
const run = spawnSync(
  'npx',
  ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
let passed = 0;
let failed = 0;
let skipped = 0;
if (fs.existsSync(report)) {
  const result = JSON.parse(fs.readFileSync(report, 'utf8'));
  passed = result.numPassedTests;
  // A file that failed outside its tests (an import error, a failing beforeAll: its tests then show
  // as skipped) counts as one failure.
  const brokenFiles = result.testResults.filter(
    (file) => file.status === 'failed' && !file.assertionResults.some((test) => test.status === 'failed'),
  ).length;
  failed = result.numFailedTests + brokenFiles;
  skipped = result.numPendingTests + result.numTodoTests;
} else {
  failed = 1;
}
// vitest's own verdict counts too: a failure this summary did not see still fails the run.
if (run.status !== 0 && failed === 0) failed = 1;
const ok = run.status === 0 && failed === 0 && passed > 0;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(ok ? 0 : 1);
