/**
 * `npm run bench [-- --only vision,pipeline,gallery,analytics] [--quick]`: the benchmarks one after
 * another (never side by side: on two cores each would halve the other), each printing its own
 * tables, then one table of their headline figures against the targets of the spec and the vision
 * issue. Default: vision, pipeline and gallery (about 20 minutes here); analytics generates a year of
 * data first and is opt-in. `--quick`: one run per vision layout (two layouts), bench:pipeline's
 * quick mode (40 images, an 8-s intake window) and 20,000 gallery vectors, for a look in about
 * 5 minutes; its figures are not the ones to quote.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string', default: 'vision,pipeline,gallery' },
    quick: { type: 'boolean', default: false },
  },
});

type Headline = { benchmark: string; figure: string; value: string; target: string };
type Bench = { name: string; args: (json: string) => string[]; headlines: (output: string, json: string) => Headline[] };

const number = (output: string, pattern: RegExp): string => pattern.exec(output)?.[1] ?? 'n/a';

const BENCHES: Bench[] = [
  {
    name: 'vision',
    args: (json) => ['--colour', '--json', json, ...(args.quick ? ['--repeat', '1', '--passes', '1', '--modes', 'overlap,procs'] : [])],
    headlines: (_, json) => {
      const modes = fs.existsSync(json) ? (JSON.parse(fs.readFileSync(json, 'utf8')).modes as { mode: string; imagesPerSecond: number }[]) : [];
      const rate = (mode: string) => modes.find((m) => m.mode === mode)?.imagesPerSecond.toFixed(1) ?? 'n/a';
      return [
        { benchmark: 'vision', figure: 'images/s, 1 process, 2 threads (decode overlapped)', value: rate('overlap'), target: '≥ 28 (issue 2)' },
        { benchmark: 'vision', figure: 'images/s, 2 processes of 1 thread', value: rate('procs'), target: '≥ 50 (issue 2)' },
      ];
    },
  },
  {
    name: 'pipeline',
    args: () => (args.quick ? ['--quick'] : []),
    headlines: (output) => [
      { benchmark: 'pipeline', figure: 'pipeline processes / in-process CPU per image', value: number(output, /worker\/in-process CPU per image: ([\d.]+)/), target: '≤ 1.3, goal 1.15 (spec)' },
      { benchmark: 'pipeline', figure: 'whole service / in-process CPU per image', value: number(output, /service\/in-process CPU per image: ([\d.]+)/), target: '≤ 2.5, goal 2.0 (spec)' },
      { benchmark: 'pipeline', figure: 'queued / in-process images per second', value: number(output, /pipeline\/in-process ratio: ([\d.]+)/), target: '≥ 0.6, goal 0.8 (spec)' },
      { benchmark: 'pipeline', figure: 'intake p99 ms, 50 robots × 1 photo/s, pipeline saturated', value: number(output, /intake p99 under saturation: ([\d.]+) ms/), target: '< 100, goal 50 (spec)' },
    ],
  },
  {
    name: 'gallery',
    args: () => (args.quick ? ['--vectors', '20000', '--queries', '200', '--upserts', '600'] : []),
    headlines: (output) => [
      {
        benchmark: 'gallery',
        figure: `p95 ms of a one-face query at ${number(output, /: (\d+) vectors of/)} vectors`,
        value: number(output, /^\| 1 face \| \d+ \| [\d.]+ \| ([\d.]+) \|/m),
        target: '< 10 at 100,000 (spec)',
      },
      {
        benchmark: 'gallery',
        figure: 'Chroma CPU ms per one-vector upsert (a new visitor)',
        value: number(output, /^\| 1-vector upsert \| \d+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| ([\d.]+) \|/m),
        target: '–',
      },
    ],
  },
  {
    name: 'analytics',
    args: () => [],
    headlines: (output) => [
      { benchmark: 'analytics', figure: 'p95 ms, hourly traffic over a year, cache off', value: number(output, /^\| traffic, hour, 1 year\s*\|\s*[\d.]+\s*\|\s*([\d.]+)/m), target: '–' },
    ],
  },
];

/** Runs `npm run bench:NAME -- ARGS`, echoing its output, and returns it. */
function run(name: string, benchArgs: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', `bench:${name}`, '--', ...benchArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      process.stdout.write(chunk);
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`bench:${name} exited with code ${code}`))));
  });
}

async function main(): Promise<void> {
  const chosen = args.only.split(',').map((name) => name.trim());
  const unknown = chosen.filter((name) => !BENCHES.some((bench) => bench.name === name));
  if (unknown.length > 0) throw new Error(`unknown benchmark ${unknown.join(', ')}; choose from ${BENCHES.map((b) => b.name).join(', ')}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faceperks-bench-'));
  const headlines: Headline[] = [];
  try {
    for (const bench of BENCHES.filter((b) => chosen.includes(b.name))) {
      console.log(`\n=== bench:${bench.name} ===`);
      const json = path.join(dir, `${bench.name}.json`);
      headlines.push(...bench.headlines(await run(bench.name, bench.args(json)), json));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\n=== headline figures${args.quick ? ' (--quick: a look, not figures to quote)' : ''} ===\n`);
  console.log('| benchmark | figure | measured | target |\n|---|---|---:|---|');
  for (const h of headlines) console.log(`| ${h.benchmark} | ${h.figure} | ${h.value} | ${h.target} |`);
}

main().catch((error) => {
  console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
