/**
 * `npm run setup`: puts the default pack's models into MODELS_DIR and the test fixture photos into
 * .cache/fixtures, from npm registry tarballs (npm pack + tar; nothing is installed). Idempotent: a quick
 * no-op when every file is present with the right checksum. One line per action.
 *
 *   npm run setup                       default pack + fixtures
 *   npm run setup -- --from DIR         also copy (and checksum) optional pack files found in DIR
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import { sha256File } from '../src/vision/models.js';
import { FACEPLUGIN_PACKAGE, MODEL_FILES, type ModelFile } from '../src/vision/packs.js';

const ROOT = path.resolve(import.meta.dirname, '..');
export const FIXTURES_DIR = path.join(ROOT, '.cache', 'fixtures');
const FIXTURE_PACKAGE = '@vladmandic/face-api@1.7.15';
const FIXTURES: Record<string, string> = {
  'sample1.jpg': '8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51',
  'sample2.jpg': '7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691',
  'sample3.jpg': '8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936',
  'sample4.jpg': '729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc',
  'sample5.jpg': '6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938',
  'sample6.jpg': '9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87',
};

function ok(file: string, sha256: string): boolean {
  return fs.existsSync(file) && sha256File(file) === sha256;
}

/** Downloads `spec` with `npm pack` into a temp dir and extracts `members` (tarball paths) into `dest`. */
function fetchFromTarball(spec: string, members: { member: string; target: string; sha256: string }[]): void {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'faceperks-setup-'));
  try {
    console.log(`setup: downloading ${spec} (npm pack)`);
    const out = execFileSync('npm', ['pack', spec, '--silent', '--pack-destination', tmp], { cwd: tmp, encoding: 'utf8' });
    const tarball = path.join(tmp, out.trim().split('\n').pop()!.trim());
    execFileSync('tar', ['-xzf', tarball, '-C', tmp, ...members.map((m) => m.member)]);
    for (const m of members) {
      const extracted = path.join(tmp, m.member);
      const actual = sha256File(extracted);
      if (actual !== m.sha256) throw new Error(`${m.member} in ${spec} has sha256 ${actual}, expected ${m.sha256}`);
      fs.mkdirSync(path.dirname(m.target), { recursive: true });
      fs.copyFileSync(extracted, `${m.target}.part`);
      fs.renameSync(`${m.target}.part`, m.target);
      console.log(`setup: wrote ${path.relative(ROOT, m.target) || m.target} (sha256 ok)`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function main(): void {
  const args = process.argv.slice(2);
  const fromIndex = args.indexOf('--from');
  const from = fromIndex >= 0 ? args[fromIndex + 1] : undefined;
  const modelsDir = loadConfig().modelsDir;
  fs.mkdirSync(modelsDir, { recursive: true });

  const all = Object.values(MODEL_FILES) as ModelFile[];
  const npmModels = all.filter((m) => m.source === 'npm');
  const missing = npmModels.filter((m) => !ok(path.join(modelsDir, m.file), m.sha256));
  if (missing.length === 0) console.log(`setup: default pack models present in ${modelsDir} (sha256 ok)`);
  else {
    fetchFromTarball(
      FACEPLUGIN_PACKAGE,
      missing.map((m) => ({ member: `package/model/${m.file}`, target: path.join(modelsDir, m.file), sha256: m.sha256 })),
    );
  }

  const missingFixtures = Object.entries(FIXTURES).filter(([name, sha]) => !ok(path.join(FIXTURES_DIR, name), sha));
  if (missingFixtures.length === 0) console.log(`setup: test fixture photos present in ${path.relative(ROOT, FIXTURES_DIR)}`);
  else {
    fetchFromTarball(
      FIXTURE_PACKAGE,
      missingFixtures.map(([name, sha256]) => ({ member: `package/demo/${name}`, target: path.join(FIXTURES_DIR, name), sha256 })),
    );
  }

  for (const m of all.filter((f) => f.source === 'user')) {
    const target = path.join(modelsDir, m.file);
    if (ok(target, m.sha256)) {
      console.log(`setup: optional ${m.file} present (sha256 ok)`);
      continue;
    }
    const candidate = from ? path.join(from, m.file) : undefined;
    if (candidate && fs.existsSync(candidate)) {
      if (sha256File(candidate) !== m.sha256) {
        console.log(`setup: skipped ${candidate}: sha256 differs from the manifest`);
        continue;
      }
      fs.copyFileSync(candidate, target);
      console.log(`setup: copied optional ${m.file} from ${from} (sha256 ok)`);
    } else if (from) {
      console.log(`setup: optional ${m.file} not in ${from} (its pack stays unavailable)`);
    }
  }
}

try {
  main();
} catch (error) {
  console.error(`setup failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
