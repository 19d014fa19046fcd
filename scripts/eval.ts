/**
 * `npm run eval -- --dataset DIR [--pack NAME] [--json FILE] [--threads N] [--detect-threshold T] [--genders TSV] [--turned]`
 *
 * Evaluates a model pack over a folder with MANIFEST.tsv (path, identity, ...; identity `none` = no face,
 * `group` = several, `unlabelled` = one unknown person). Prints tables and writes JSON:
 * detection (faceRate, noFaceFalsePositiveRate, groupMeanFaces), verification over all pairs of the
 * largest face per labelled image (auc, TAR at FAR 1e-2 / 1e-3, threshold at FAR 1e-3), identification
 * (closed-set rank-1; open set with every other identity left out of the gallery, at that threshold),
 * a threshold sweep for the matcher, timings, and a breakdown per top-level folder.
 * `--turned` also turns every labelled image with a face a quarter, half and three-quarter turn (as a
 * capture without EXIF orientation would arrive) and reports how often its face still matches the
 * upright one at the FAR 1e-3 threshold: the reach of the detector's rotation fallback.
 * The photos are read in place; nothing is copied.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { loadConfig } from '../src/config.js';
import { ImageError } from '../src/imaging/errors.js';
import { imageLimits, prepareImage } from '../src/imaging/prepare.js';
import { cosineSimilarity } from '../src/vectors.js';
import { createDescriber, createDetector, type DescribedFace, type PackName } from '../src/vision/index.js';
import { acceptRate, bestMatch, rocAuc, thresholdAtFar } from '../src/vision/metrics.js';
import { defaultDataset, isLabelled, readManifest, type ManifestRow } from './dataset.js';

type Row = ManifestRow;
type Result = Row & { faces: number; error?: string; face?: DescribedFace };

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const round = (x: number, d = 4) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

function largest(faces: DescribedFace[] | { box: { width: number; height: number } }[]): number {
  let best = -1;
  let area = -1;
  faces.forEach((f, i) => {
    const a = f.box.width * f.box.height;
    if (a > area) {
      area = a;
      best = i;
    }
  });
  return best;
}

type Pair = { a: Result; b: Result; score: number; genuine: boolean };

function openSet(results: Result[], threshold: number, leaveOutParity: 0 | 1) {
  const withFace = results.filter((r) => isLabelled(r) && r.face);
  const byId = new Map<string, Result[]>();
  for (const r of withFace) byId.set(r.identity, [...(byId.get(r.identity) ?? []), r]);
  const multi = [...byId.keys()].filter((id) => byId.get(id)!.length >= 2).sort();
  const enrolled = new Set(multi.filter((_, i) => i % 2 !== leaveOutParity));
  const gallery = new Map<string, Float32Array>();
  for (const id of enrolled) gallery.set(id, byId.get(id)![0].face!.embedding);
  const enrolledProbes: { correct: boolean; score: number }[] = [];
  const leftOut: number[] = [];
  for (const [id, rs] of byId) {
    const probes = enrolled.has(id) ? rs.slice(1) : rs;
    for (const p of probes) {
      const scores = new Map<string, number>();
      for (const [gid, e] of gallery) scores.set(gid, cosineSimilarity(p.face!.embedding, e));
      const best = bestMatch(scores);
      if (enrolled.has(id)) enrolledProbes.push({ correct: best.identity === id, score: best.score });
      else leftOut.push(best.score);
    }
  }
  const accept = (t: number) => ({
    enrolledAccept: enrolledProbes.filter((p) => p.correct && p.score >= t).length / Math.max(1, enrolledProbes.length),
    leftOutAccept: acceptRate(leftOut, t),
  });
  return { accept, enrolledProbes: enrolledProbes.length, leftOutProbes: leftOut.length, ...accept(threshold) };
}

async function main(): Promise<void> {
  const dataset = path.resolve(arg('dataset') ?? defaultDataset());
  const pack = (arg('pack') ?? 'default') as PackName;
  const threads = Number(arg('threads') ?? 2);
  const config = loadConfig();
  const detectThreshold = arg('detect-threshold') !== undefined ? Number(arg('detect-threshold')) : pack === 'default' ? config.DETECT_THRESHOLD : undefined;
  const rows = readManifest(dataset);
  const opts = { modelsDir: config.modelsDir, pack, threads, detectThreshold };
  const detector = await createDetector(opts);
  const describer = await createDescriber(opts);
  const limits = imageLimits(config);

  const results: Result[] = [];
  let decodeMs = 0;
  let decoded = 0;
  for (const row of rows) {
    const file = path.join(dataset, row.path);
    try {
      const t0 = performance.now();
      const prepared = await prepareImage(fs.readFileSync(file), limits);
      decodeMs += performance.now() - t0;
      decoded++;
      const faces = await detector.detect(prepared.image);
      const result: Result = { ...row, faces: faces.length };
      if (row.identity !== 'none' && row.identity !== 'group' && faces.length > 0) {
        const [face] = await describer.describe(prepared.image, [faces[largest(faces)]]);
        result.face = face;
      }
      results.push(result);
    } catch (error) {
      if (!(error instanceof ImageError)) throw error;
      results.push({ ...row, faces: 0, error: `${error.code}: ${error.message}` });
    }
  }

  // Detection.
  const detection = (rs: Result[]) => {
    const labelled = rs.filter(isLabelled);
    const none = rs.filter((r) => r.identity === 'none');
    const group = rs.filter((r) => r.identity === 'group');
    const unl = rs.filter((r) => r.identity === 'unlabelled');
    return {
      faceRate: round(labelled.filter((r) => r.faces > 0).length / labelled.length),
      noFaceFalsePositiveRate: round(none.filter((r) => r.faces > 0).length / none.length),
      groupMeanFaces: round(mean(group.map((r) => r.faces)), 2),
      unlabelledFaceRate: round(unl.filter((r) => r.faces > 0).length / unl.length),
      counts: { labelled: labelled.length, none: none.length, group: group.length, unlabelled: unl.length },
    };
  };

  // Verification: every pair of labelled images with a face.
  const described = results.filter((r) => isLabelled(r) && r.face);
  const pairs: Pair[] = [];
  for (let i = 0; i < described.length; i++) {
    for (let j = i + 1; j < described.length; j++) {
      const a = described[i];
      const b = described[j];
      pairs.push({ a, b, score: cosineSimilarity(a.face!.embedding, b.face!.embedding), genuine: a.identity === b.identity });
    }
  }
  const genuine = pairs.filter((p) => p.genuine).map((p) => p.score);
  const impostor = pairs.filter((p) => !p.genuine).map((p) => p.score);
  const t2 = thresholdAtFar(impostor, 1e-2);
  const t3 = thresholdAtFar(impostor, 1e-3);
  const verification = {
    auc: round(rocAuc(genuine, impostor), 5),
    tarAtFar1e2: round(acceptRate(genuine, t2)),
    tarAtFar1e3: round(acceptRate(genuine, t3)),
    thresholdAtFar1e3: round(t3),
    thresholdAtFar1e2: round(t2),
    genuinePairs: genuine.length,
    impostorPairs: impostor.length,
    genuineMedian: round(median(genuine)),
    impostorMedian: round(median(impostor)),
  };

  // Identification: gallery = first image (by path) of each identity with >= 2 described images.
  const byId = new Map<string, Result[]>();
  for (const r of described) byId.set(r.identity, [...(byId.get(r.identity) ?? []), r]);
  const galleryIds = [...byId.keys()].filter((id) => byId.get(id)!.length >= 2);
  const rank1Hits = new Map<string, { hits: number; n: number }>();
  let hits = 0;
  let probes = 0;
  for (const id of galleryIds) {
    for (const p of byId.get(id)!.slice(1)) {
      const scores = new Map<string, number>();
      for (const gid of galleryIds) scores.set(gid, cosineSimilarity(p.face!.embedding, byId.get(gid)![0].face!.embedding));
      const ok = bestMatch(scores).identity === id;
      hits += ok ? 1 : 0;
      probes++;
      const f = rank1Hits.get(p.folder) ?? { hits: 0, n: 0 };
      f.hits += ok ? 1 : 0;
      f.n++;
      rank1Hits.set(p.folder, f);
    }
  }
  const split0 = openSet(results, t3, 0);
  const split1 = openSet(results, t3, 1);
  const identification = {
    rank1: round(hits / probes),
    probes,
    galleryIdentities: galleryIds.length,
    openSetAccept: round((split0.enrolledAccept + split1.enrolledAccept) / 2),
    openSetFalseAccept: round((split0.leftOutAccept + split1.leftOutAccept) / 2),
    openSetSplits: [split0, split1].map((s) => ({
      enrolledProbes: s.enrolledProbes,
      leftOutProbes: s.leftOutProbes,
      accept: round(s.enrolledAccept),
      falseAccept: round(s.leftOutAccept),
    })),
  };

  // Threshold sweep for the matcher: left-out accept vs enrolled accept, averaged over both splits.
  const sweep: { threshold: number; enrolledAccept: number; leftOutAccept: number; far: number; tar: number }[] = [];
  for (let t = 0.2; t <= 0.701; t += 0.01) {
    const a = split0.accept(t);
    const b = split1.accept(t);
    sweep.push({
      threshold: round(t, 2),
      enrolledAccept: round((a.enrolledAccept + b.enrolledAccept) / 2),
      leftOutAccept: round((a.leftOutAccept + b.leftOutAccept) / 2),
      far: round(acceptRate(impostor, t), 5),
      tar: round(acceptRate(genuine, t)),
    });
  }
  const eligible = sweep.filter((s) => s.leftOutAccept <= 0.02 && s.enrolledAccept >= 0.97);
  const recommended = eligible.length ? eligible[0].threshold : null;

  // Per-folder breakdown.
  const folders = [...new Set(results.map((r) => r.folder))].sort();
  const breakdown = folders.map((folder) => {
    const rs = results.filter((r) => r.folder === folder);
    const g = pairs.filter((p) => p.genuine && p.a.folder === folder && p.b.folder === folder).map((p) => p.score);
    const r1 = rank1Hits.get(folder);
    return {
      folder,
      images: rs.length,
      ...detection(rs),
      genuinePairs: g.length,
      tarAtGlobalFar1e3: g.length ? round(acceptRate(g, t3)) : null,
      rank1: r1 ? round(r1.hits / r1.n) : null,
      errors: rs.filter((r) => r.error).length,
    };
  });

  // Gender agreement with an optional identity -> gender list (TSV: identity, male|female).
  let gender: { agreement: number; faces: number } | undefined;
  const gendersFile = arg('genders');
  if (gendersFile) {
    const map = new Map(
      fs.readFileSync(gendersFile, 'utf8').split(/\r?\n/).filter(Boolean).map((l) => l.split('\t') as [string, string]),
    );
    const judged = described.filter((r) => map.has(r.identity));
    gender = { agreement: round(judged.filter((r) => r.face!.gender === map.get(r.identity)).length / judged.length), faces: judged.length };
  }

  // The timings are those of the evaluation proper, not of the turned copies below.
  const dt = { ...detector.timings };
  const ds = { ...describer.timings };
  let turned: Record<'90' | '180' | '270', number> & { images: number } | undefined;
  if (process.argv.includes('--turned')) {
    const matched = { 90: 0, 180: 0, 270: 0 };
    for (const r of described) {
      const bytes = fs.readFileSync(path.join(dataset, r.path));
      for (const degrees of [90, 180, 270] as const) {
        const turnedBytes = await sharp(bytes).rotate().rotate(degrees).jpeg({ quality: 92 }).toBuffer();
        const prepared = await prepareImage(turnedBytes, limits);
        const faces = await describer.describe(prepared.image, await detector.detect(prepared.image));
        if (faces.some((f) => cosineSimilarity(f.embedding, r.face!.embedding) >= t3)) matched[degrees]++;
      }
    }
    const rate = (n: number) => round(n / described.length);
    turned = { images: described.length, 90: rate(matched[90]), 180: rate(matched[180]), 270: rate(matched[270]) };
  }

  const report = {
    pack,
    dataset,
    images: rows.length,
    decodeErrors: results.filter((r) => r.error).map((r) => `${r.path}: ${r.error}`),
    detectThreshold: detectThreshold ?? null,
    detection: detection(results),
    verification,
    identification,
    thresholds: { recommendedMember: recommended, rule: 'lowest t with left-out accept <= 0.02 and enrolled accept >= 0.97', sweep },
    gender,
    turned,
    timingMs: {
      unit: 'mean ms per image for decode/detect/landmarks, per face for align/embed/attributes',
      decode: round(decodeMs / Math.max(1, decoded), 2),
      detect: round(dt.detect / Math.max(1, dt.calls), 2),
      landmarks: round(dt.landmarks / Math.max(1, dt.calls), 2),
      align: round(ds.align / Math.max(1, ds.faces), 2),
      embed: round(ds.embed / Math.max(1, ds.faces), 2),
      attributes: round(ds.attributes / Math.max(1, ds.faces), 2),
    },
    breakdown,
    misses: results.filter((r) => isLabelled(r) && r.faces === 0).map((r) => r.path),
    falsePositives: results.filter((r) => r.identity === 'none' && r.faces > 0).map((r) => `${r.path} (${r.faces})`),
  };

  console.log(`pack ${pack} on ${dataset}: ${rows.length} images`);
  console.table({ detection: { faceRate: report.detection.faceRate, noFaceFP: report.detection.noFaceFalsePositiveRate, groupMeanFaces: report.detection.groupMeanFaces } });
  console.table({ verification: { auc: verification.auc, tarAtFar1e2: verification.tarAtFar1e2, tarAtFar1e3: verification.tarAtFar1e3, thresholdAtFar1e3: verification.thresholdAtFar1e3 } });
  console.table({ identification: { rank1: identification.rank1, openSetAccept: identification.openSetAccept, openSetFalseAccept: identification.openSetFalseAccept } });
  console.table(Object.fromEntries(breakdown.map(({ folder, images, faceRate, noFaceFalsePositiveRate, groupMeanFaces, tarAtGlobalFar1e3, rank1 }) => [folder, { images, faceRate, noFaceFP: noFaceFalsePositiveRate, groupMeanFaces, tarAtGlobalFar1e3, rank1 }])));
  console.log(`member threshold (${report.thresholds.rule}): ${recommended ?? 'none qualifies'}`);
  if (report.misses.length) console.log(`missed: ${report.misses.join(', ')}`);
  if (report.falsePositives.length) console.log(`faces on face-less images: ${report.falsePositives.join(', ')}`);
  const showPairs = Number(arg('pairs') ?? 0);
  if (showPairs > 0) {
    const fmt = (p: Pair) => `${p.score.toFixed(3)} ${p.a.path} ~ ${p.b.path}`;
    console.log('lowest genuine pairs:\n  ' + pairs.filter((p) => p.genuine).sort((a, b) => a.score - b.score).slice(0, showPairs).map(fmt).join('\n  '));
    console.log('highest impostor pairs:\n  ' + pairs.filter((p) => !p.genuine).sort((a, b) => b.score - a.score).slice(0, showPairs).map(fmt).join('\n  '));
  }
  if (gender) console.log(`gender agreement: ${gender.agreement} over ${gender.faces} faces`);
  if (turned) console.log(`turned captures whose face still matches the upright one (${turned.images} images): 90° ${turned[90]}, 180° ${turned[180]}, 270° ${turned[270]}`);
  console.table({ timingMs: report.timingMs });
  const jsonFile = arg('json');
  if (jsonFile) {
    fs.writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`wrote ${jsonFile}`);
  }
  await detector.release();
  await describer.release();
}

function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

main().catch((error) => {
  console.error(`eval failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
