// Runs vitest and ends with one summary line; a run that executed no test fails. With CI=true (CI
// sets it) a skipped test fails the run too: the list of what skipped, and why, comes before the
// summary. A suite that skips for a missing prerequisite says why in its name ("[skipped: …]").
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ci = ['true', '1'].includes((process.env.CI ?? '').toLowerCase());
const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'faceperks-tests-')), 'report.json');
const run = spawnSync(
  'npx',
  ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
let passed = 0;
let failed = 0;
let skipped = 0;
/** Every test that did not run: file, name and, where the test says it, why. */
const skips = [];
if (fs.existsSync(report)) {
  const result = JSON.parse(fs.readFileSync(report, 'utf8'));
  passed = result.numPassedTests;
  // A file that failed outside its tests (an import error, a failing beforeAll: its tests then show
  // as skipped) counts as one failure.
  const brokenFiles = result.testResults.filter(
    (file) => file.status === 'failed' && !file.assertionResults.some((test) => test.status === 'failed'),
  );
  failed = result.numFailedTests + brokenFiles.length;
  skipped = result.numPendingTests + result.numTodoTests;
  for (const file of result.testResults) {
    for (const test of file.assertionResults) {
      if (!['skipped', 'pending', 'todo'].includes(test.status)) continue;
      const why =
        test.fullName.match(/\[skipped: ([^\]]*)\]/)?.[1] ??
        (test.status === 'todo'
          ? 'marked todo'
          : file.status === 'failed'
            ? `its file or suite failed before the test ran: ${file.message || 'see the failure above'}`
            : 'no reason given (.skip, .only elsewhere, a -t filter, or context.skip)');
      skips.push({ file: path.relative(process.cwd(), file.name), name: test.fullName.replace(/ ?\[skipped: [^\]]*\]/, ''), why });
    }
  }
} else {
  failed = 1;
}
// vitest's own verdict counts too: a failure this summary did not see still fails the run.
if (run.status !== 0 && failed === 0) failed = 1;
const skipsFail = ci && (skips.length > 0 || skipped > 0);
if (skipsFail) {
  console.log(`\nCI=true: ${Math.max(skips.length, skipped)} skipped test(s) fail the run:`);
  for (const s of skips) console.log(`  ${s.file} > ${s.name}\n      why: ${s.why}`);
  console.log('');
}
const ok = run.status === 0 && failed === 0 && passed > 0 && !skipsFail;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(ok ? 0 : 1);
