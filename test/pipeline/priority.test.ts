/** Batch worker processes yield the CPU to the intake API and to interactive requests. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const runner = path.resolve(import.meta.dirname, '../../workers/runner.ts');
const linux = fs.existsSync('/proc/self/task');

/** Runs deprioritiseBatchWork in a fresh process that has started a few threads, then lists the niceness of each of its threads. */
function threadNiceness(names: string[], nice: number): number[] {
  const script = `
    import fs from 'node:fs';
    import { Worker } from 'node:worker_threads';
    import { deprioritiseBatchWork } from ${JSON.stringify(runner)};
    await Promise.all([1, 2, 3, 4].map(() => fs.promises.readFile(${JSON.stringify(runner)})));
    deprioritiseBatchWork(${JSON.stringify(names)}, ${nice});
    // A thread started afterwards inherits the niceness of the thread that starts it.
    await new Promise((resolve) => new Worker('', { eval: true }).on('exit', resolve));
    const nice = fs.readdirSync('/proc/self/task').map((tid) => Number(fs.readFileSync('/proc/self/task/' + tid + '/stat', 'utf8').split(') ')[1].split(' ')[16]));
    console.log(JSON.stringify(nice));`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

describe.runIf(linux)('worker process priority', () => {
  it('lowers every thread of a batch-only worker process', () => {
    const nice = threadNiceness(['detect', 'embed'], 7);
    expect(nice.length).toBeGreaterThan(4);
    expect(new Set(nice)).toEqual(new Set([7]));
  });

  it('leaves a process that answers interactive requests, or a niceness of 0, as it was', () => {
    expect(new Set(threadNiceness(['interactive', 'detect'], 7))).toEqual(new Set([0]));
    expect(new Set(threadNiceness(['detect'], 0))).toEqual(new Set([0]));
  });
});
