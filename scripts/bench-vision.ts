/**
 * `npm run bench:vision -- --dataset DIR [--pack NAME] [--threads N] [--colour] [--limit N] [--passes N]`
 *
 * The in-process limit of the pipeline: one process, one loop over the images of a dataset folder
 * (read into memory first), running decode (<= WORK_IMAGE_MAX_SIDE), detect, landmarks, align, embed,
 * age and gender on every face. Prints images/s and ms per stage; `--json FILE` writes them.
 * `--colour` keeps only colour images (skips greyscale files such as the Yale GIFs).
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { loadConfig } from '../src/config.js';
import { ImageError } from '../src/imaging/errors.js';
import { imageLimits, prepareImage } from '../src/imaging/prepare.js';
import { createDescriber, createDetector, type PackName } from '../src/vision/index.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function listImages(dataset: string): string[] {
  const manifest = path.join(dataset, 'MANIFEST.tsv');
  if (fs.existsSync(manifest)) {
    const lines = fs.readFileSync(manifest, 'utf8').split(/\r?\n/).filter(Boolean);
    const pi = lines[0].split('\t').indexOf('path');
    return lines.slice(1).map((l) => path.join(dataset, l.split('\t')[pi])).sort();
  }
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(jpe?g|png|webp|gif|tiff?|avif)$/i.test(e.name)) out.push(p);
    }
  };
  walk(dataset);
  return out.sort();
}

async function isColour(bytes: Buffer): Promise<boolean> {
  try {
    const m = await sharp(bytes).metadata();
    if ((m.channels ?? 3) < 3 || m.space === 'b-w') return false;
    // Grey images stored as RGB: no channel differs from another.
    const { channels } = await sharp(bytes).resize(64, 64, { fit: 'inside' }).stats();
    return Math.abs(channels[0].mean - channels[1].mean) + Math.abs(channels[1].mean - channels[2].mean) > 0.5;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const shared = process.env.FACEPERKS_SHARED_DIR ?? path.resolve(import.meta.dirname, '../../shared');
  const dataset = path.resolve(arg('dataset') ?? path.join(shared, 'faces'));
  const pack = (arg('pack') ?? 'default') as PackName;
  const threads = Number(arg('threads') ?? 2);
  const passes = Number(arg('passes') ?? 1);
  const config = loadConfig();
  let files = listImages(dataset);
  let images = await Promise.all(files.map(async (f) => ({ file: f, bytes: fs.readFileSync(f) })));
  if (process.argv.includes('--colour')) {
    const keep = await Promise.all(images.map((i) => isColour(i.bytes)));
    images = images.filter((_, i) => keep[i]);
  }
  const limit = arg('limit');
  if (limit) images = images.slice(0, Number(limit));
  files = images.map((i) => i.file);
  const opts = {
    modelsDir: config.modelsDir,
    pack,
    threads,
    detectThreshold: pack === 'default' ? config.DETECT_THRESHOLD : undefined,
  };
  const detector = await createDetector(opts);
  const describer = await createDescriber(opts);
  const limits = imageLimits(config);

  const runOnce = async () => {
    let faces = 0;
    let decode = 0;
    for (const { bytes } of images) {
      const t0 = performance.now();
      let prepared;
      try {
        prepared = await prepareImage(bytes, limits);
      } catch (error) {
        if (error instanceof ImageError) continue;
        throw error;
      }
      decode += performance.now() - t0;
      const found = await detector.detect(prepared.image);
      await describer.describe(prepared.image, found);
      faces += found.length;
    }
    return { faces, decode };
  };
  // Warm-up on a few images (first runs allocate), then reset the counters.
  const all = images;
  images = all.slice(0, 3);
  await runOnce();
  images = all;
  Object.assign(detector.timings, { detect: 0, landmarks: 0, calls: 0 });
  Object.assign(describer.timings, { align: 0, embed: 0, attributes: 0, faces: 0 });

  const start = performance.now();
  const cpuStart = process.cpuUsage();
  let faces = 0;
  let decode = 0;
  for (let p = 0; p < passes; p++) {
    const r = await runOnce();
    faces += r.faces;
    decode += r.decode;
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const n = images.length * passes;
  const d = detector.timings;
  const s = describer.timings;
  const report = {
    pack,
    dataset,
    threads,
    images: n,
    faces,
    facesPerImage: +(faces / n).toFixed(2),
    imagesPerSecond: +(n / seconds).toFixed(2),
    /** CPU time of this process per image (all threads): less sensitive to other load than wall time. */
    cpuMsPerImage: +(cpuMs / n).toFixed(2),
    loadAverage: (await import('node:os')).loadavg()[0],
    msPerImage: {
      total: +((seconds * 1000) / n).toFixed(2),
      decode: +(decode / n).toFixed(2),
      detect: +(d.detect / n).toFixed(2),
      landmarks: +(d.landmarks / n).toFixed(2),
      align: +(s.align / n).toFixed(2),
      embed: +(s.embed / n).toFixed(2),
      attributes: +(s.attributes / n).toFixed(2),
    },
  };
  console.log(`bench:vision pack ${pack}, ${threads} thread(s), ${n} images (${files.length} files x ${passes}), ${faces} faces`);
  console.log(`${report.imagesPerSecond} images/s, ${report.facesPerImage} faces/image, ${report.cpuMsPerImage} CPU ms/image, load average ${report.loadAverage.toFixed(1)}`);
  console.table({ 'ms per image': report.msPerImage });
  const json = arg('json');
  if (json) fs.writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  await detector.release();
  await describer.release();
}

main().catch((error) => {
  console.error(`bench:vision failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
