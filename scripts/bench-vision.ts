/**
 * `npm run bench:vision -- [--dataset DIR] [--pack NAME] [--colour] [--limit N] [--passes N] [--repeat N] [--modes LIST] [--json FILE]`
 *
 * The in-process limit of the pipeline: decode (<= WORK_IMAGE_MAX_SIDE), detect, landmarks, align,
 * embed, age and gender on every face of every image of a dataset folder (read into memory first).
 * Each mode runs in fresh child processes that load the models, warm up, then start together:
 *   seq      one process, 2 ORT threads (libvips gets 2 as well), one image after another
 *   overlap  one process, 2 ORT threads, the next image decoding while this one is inferred
 *   single   one process, 1 thread, one image after another
 *   overlap1 one process, 1 ORT thread, the next image decoding (1 libvips thread) meanwhile
 *   procs    two processes of 1 thread each, taking images from one queue
 * Each mode runs `--repeat` times (3), each run `--passes` times over the images (3), and the median
 * run is reported: this shared machine's throughput varies by 20% from one run to the next. Prints
 * a table of images/s and ms per stage; `--colour` keeps only colour images (skips greyscale files
 * such as the Yale GIFs).
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { loadConfig } from '../src/config.js';
import { ImageError } from '../src/imaging/errors.js';
import { imageLimits, prepareImage, type PreparedImage } from '../src/imaging/prepare.js';
import { WORKER_NODE_FLAGS } from '../src/supervisor.js';
import { createDescriber, createDetector, type PackName } from '../src/vision/index.js';
import { defaultDataset, listPhotos } from './dataset.js';

type Mode = { name: string; processes: number; threads: number; overlap: boolean; label: string };

const MODES: Mode[] = [
  { name: 'seq', processes: 1, threads: 2, overlap: false, label: '1 process, 2 threads, sequential' },
  { name: 'overlap', processes: 1, threads: 2, overlap: true, label: '1 process, 2 threads, decode overlapped' },
  { name: 'single', processes: 1, threads: 1, overlap: false, label: '1 process, 1 thread, sequential' },
  { name: 'overlap1', processes: 1, threads: 1, overlap: true, label: '1 process, 1 ORT + 1 decode thread' },
  { name: 'procs', processes: 2, threads: 1, overlap: false, label: '2 processes, 1 thread each' },
];

const STAGES = ['decode', 'detect', 'landmarks', 'align', 'embed', 'attributes'] as const;
type StageMs = Record<(typeof STAGES)[number], number>;

type ChildTask = { files: string[]; pack: PackName; threads: number; overlap: boolean };
type ChildResult = { images: number; faces: number; cpuMs: number; ms: StageMs };
/** Child -> parent. `take` asks for the next image: the processes of a mode share one queue. */
type ChildMessage = { ready: true } | { take: true } | { done: ChildResult } | { error: string };
/** Parent -> child after the task: 'go', then one `index` per `take` (-1 when the queue is empty). */
type ParentMessage = 'go' | { index: number };

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
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

/** Child: load models, warm up, wait for 'go', infer the images the parent hands out, report. */
async function child(task: ChildTask): Promise<ChildResult> {
  const config = loadConfig();
  // libvips gets the same thread budget as ORT.
  sharp.concurrency(task.threads);
  const opts = {
    modelsDir: config.modelsDir,
    pack: task.pack,
    threads: task.threads,
    detectThreshold: task.pack === 'default' ? config.DETECT_THRESHOLD : undefined,
  };
  const detector = await createDetector(opts);
  const describer = await createDescriber(opts);
  const limits = imageLimits(config);
  const images = task.files.map((f) => fs.readFileSync(f));
  let decodeMs = 0;

  const prepare = async (bytes: Buffer): Promise<PreparedImage | undefined> => {
    const t0 = performance.now();
    try {
      return await prepareImage(bytes, limits);
    } catch (error) {
      if (error instanceof ImageError) return undefined;
      throw error;
    } finally {
      decodeMs += performance.now() - t0;
    }
  };
  const infer = async (prepared: PreparedImage | undefined): Promise<number> => {
    if (!prepared) return 0;
    const found = await detector.detect(prepared.image);
    await describer.describe(prepared.image, found);
    return found.length;
  };
  const warmUp = async () => {
    for (const bytes of images.slice(0, 3)) await infer(await prepare(bytes));
    Object.assign(detector.timings, { detect: 0, landmarks: 0, calls: 0, rotationProbes: 0 });
    Object.assign(describer.timings, { align: 0, embed: 0, attributes: 0, faces: 0 });
    decodeMs = 0;
  };
  const granted: ((index: number) => void)[] = [];
  let started: () => void;
  const go = new Promise<void>((resolve) => (started = resolve));
  process.on('message', (m: ParentMessage) => (m === 'go' ? started() : granted.shift()!(m.index)));
  const take = () =>
    new Promise<Buffer | undefined>((resolve) => {
      granted.push((index) => resolve(index < 0 ? undefined : images[index % images.length]));
      process.send!({ take: true } satisfies ChildMessage);
    });

  await warmUp();
  process.send!({ ready: true } satisfies ChildMessage);
  await go;
  const cpu = process.cpuUsage();
  let faces = 0;
  let count = 0;
  if (task.overlap) {
    const prepareNext = async () => {
      const bytes = await take();
      return bytes ? { prepared: await prepare(bytes) } : undefined;
    };
    let next = prepareNext();
    for (let current = await next; current; current = await next) {
      next = prepareNext();
      faces += await infer(current.prepared);
      count++;
    }
  } else {
    for (let bytes = await take(); bytes; bytes = await take()) {
      faces += await infer(await prepare(bytes));
      count++;
    }
  }
  const used = process.cpuUsage(cpu);
  const d = detector.timings;
  const s = describer.timings;
  return {
    images: count,
    faces,
    cpuMs: (used.user + used.system) / 1000,
    ms: { decode: decodeMs, detect: d.detect, landmarks: d.landmarks, align: s.align, embed: s.embed, attributes: s.attributes },
  };
}

type ModeReport = {
  mode: string;
  label: string;
  images: number;
  faces: number;
  imagesPerSecond: number;
  cpuMsPerImage: number;
  msPerImage: StageMs;
  /** images/s of every repeat, slowest first. */
  runs?: number[];
};

/**
 * Forks the mode's processes, starts them together once all are warm, hands out the images one at a
 * time from one queue (so no process idles while another still has a share left), sums the results.
 */
async function runMode(mode: Mode, files: string[], pack: PackName, passes: number): Promise<ModeReport> {
  let queued = 0;
  const total = files.length * passes;
  const task: ChildTask = { files, pack, threads: mode.threads, overlap: mode.overlap };
  const children = Array.from({ length: mode.processes }, () => {
    // The children run with the worker processes' Node flags.
    const proc = fork(import.meta.filename, ['--child'], {
      execArgv: [...process.execArgv, ...WORKER_NODE_FLAGS],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    proc.send(task);
    const messages: ChildMessage[] = [];
    const waiters: ((m: ChildMessage) => void)[] = [];
    proc.on('message', (m: ChildMessage) => {
      if ('take' in m) proc.send({ index: queued < total ? queued++ : -1 } satisfies ParentMessage);
      else (waiters.shift() ?? ((x) => messages.push(x)))(m);
    });
    proc.on('exit', (code) => {
      if (code !== 0) (waiters.shift() ?? ((x) => messages.push(x)))({ error: `exited with code ${code}` });
    });
    const next = () => new Promise<ChildMessage>((resolve) => (messages.length ? resolve(messages.shift()!) : waiters.push(resolve)));
    return { proc, next };
  });
  const expect = async <K extends 'ready' | 'done'>(c: (typeof children)[number], key: K) => {
    // 'take' never reaches here: the listener answers it.
    const m = await c.next();
    if ('error' in m) throw new Error(`bench child (${mode.name}): ${m.error}`);
    if (!(key in m)) throw new Error(`bench child (${mode.name}): unexpected message ${JSON.stringify(m)}`);
    return m as Extract<ChildMessage, Record<K, unknown>>;
  };
  await Promise.all(children.map((c) => expect(c, 'ready')));
  const start = performance.now();
  for (const c of children) c.proc.send('go' satisfies ParentMessage);
  const results = (await Promise.all(children.map((c) => expect(c, 'done')))).map((m) => m.done);
  const seconds = (performance.now() - start) / 1000;
  const images = results.reduce((a, r) => a + r.images, 0);
  const ms = Object.fromEntries(
    STAGES.map((k) => [k, +(results.reduce((a, r) => a + r.ms[k], 0) / images).toFixed(2)]),
  ) as StageMs;
  return {
    mode: mode.name,
    label: mode.label,
    images,
    faces: results.reduce((a, r) => a + r.faces, 0),
    imagesPerSecond: +(images / seconds).toFixed(2),
    cpuMsPerImage: +(results.reduce((a, r) => a + r.cpuMs, 0) / images).toFixed(2),
    msPerImage: ms,
  };
}

async function main(): Promise<void> {
  const dataset = path.resolve(arg('dataset') ?? defaultDataset());
  const pack = (arg('pack') ?? 'default') as PackName;
  // Three passes (about 10 s a run): single passes of 3 s varied by ±10 % with start-up effects.
  const passes = Number(arg('passes') ?? 3);
  const repeat = Number(arg('repeat') ?? 3);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a whole number of at least 1, got ${arg('repeat')}`);
  if (!Number.isInteger(passes) || passes < 1) throw new Error(`--passes must be a whole number of at least 1, got ${arg('passes')}`);
  const wanted = (arg('modes') ?? MODES.map((m) => m.name).join(',')).split(',');
  const modes = wanted.map((name) => {
    const mode = MODES.find((m) => m.name === name);
    if (!mode) throw new Error(`unknown mode ${name}; modes are ${MODES.map((m) => m.name).join(', ')}`);
    return mode;
  });
  let files = listPhotos(dataset);
  if (process.argv.includes('--colour')) {
    const keep = await Promise.all(files.map((f) => isColour(fs.readFileSync(f))));
    files = files.filter((_, i) => keep[i]);
  }
  const limit = arg('limit');
  if (limit) files = files.slice(0, Number(limit));

  const reports: ModeReport[] = [];
  for (const mode of modes) {
    const runs: ModeReport[] = [];
    for (let i = 0; i < repeat; i++) runs.push(await runMode(mode, files, pack, passes));
    runs.sort((a, b) => a.imagesPerSecond - b.imagesPerSecond);
    const median = runs[Math.floor(runs.length / 2)];
    reports.push({ ...median, runs: runs.map((r) => r.imagesPerSecond) });
  }
  const faces = reports[0].faces / reports[0].images;
  console.log(
    `bench:vision pack ${pack}, ${files.length} images x ${passes} pass(es), ${faces.toFixed(2)} faces/image, median of ${repeat} runs, load average ${os.loadavg()[0].toFixed(1)}`,
  );
  console.table(
    Object.fromEntries(
      reports.map((r) => [
        r.label,
        { 'images/s': r.imagesPerSecond, range: `${r.runs![0]}-${r.runs!.at(-1)}`, 'CPU ms/image': r.cpuMsPerImage, ...r.msPerImage },
      ]),
    ),
  );
  console.log('(stage columns: wall ms per image in each process; with overlap, decode runs beside inference)');
  const json = arg('json');
  if (json) fs.writeFileSync(json, `${JSON.stringify({ pack, dataset, passes, modes: reports }, null, 2)}\n`);
}

if (process.argv.includes('--child')) {
  process.once('message', (task: ChildTask) => {
    child(task).then(
      (done) => process.send!({ done } satisfies ChildMessage, () => process.exit(0)),
      (error) => {
        process.send!({ error: error instanceof Error ? error.message : String(error) } satisfies ChildMessage, () => process.exit(1));
      },
    );
  });
} else {
  main().catch((error) => {
    console.error(`bench:vision failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
