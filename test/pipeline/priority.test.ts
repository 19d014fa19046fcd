/** Batch worker processes yield the CPU to the intake API and to interactive requests. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const runner = path.resolve(import.meta.dirname, '../../workers/runner.ts');
const linux = fs.existsSync('/proc/self/task');

/**
 * Runs deprioritiseBatchWork in a fresh process that has started a few threads; returns the niceness
 * it started with and that of each of its threads afterwards.
 */
function threadNiceness(names: string[], nice: number, ownSession = false): { started: number; threads: number[]; autogroup: string | null } {
  const script = `
    import fs from 'node:fs';
    import os from 'node:os';
    import { Worker } from 'node:worker_threads';
    import { deprioritiseBatchWork } from ${JSON.stringify(runner)};
    await Promise.all([1, 2, 3, 4].map(() => fs.promises.readFile(${JSON.stringify(runner)})));
    const started = os.getPriority();
    const failure = deprioritiseBatchWork(${JSON.stringify(names)}, ${nice});
    if (failure) throw new Error(failure);
    // A thread started afterwards inherits the niceness of the thread that starts it.
    await new Promise((resolve) => new Worker('', { eval: true }).on('exit', resolve));
    const threads = fs.readdirSync('/proc/self/task').map((tid) => Number(fs.readFileSync('/proc/self/task/' + tid + '/stat', 'utf8').split(') ')[1].split(' ')[16]));
    const autogroup = fs.existsSync('/proc/self/autogroup') ? fs.readFileSync('/proc/self/autogroup', 'utf8').trim() : null;
    console.log(JSON.stringify({ started, threads, autogroup }));`;
  const node = [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script];
  // setsid(1) -w runs it as the leader of a new session, as the supervisor of `npm start` does.
  const [command, ...args] = ownSession ? ['setsid', '-w', ...node] : node;
  const out = execFileSync(command, args, { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

describe.runIf(linux)('worker process priority', () => {
  it('lowers every thread of a batch-only worker process (never raises it)', () => {
    const { started, threads } = threadNiceness(['vision', 'match'], 7);
    expect(threads.length).toBeGreaterThan(4);
    expect(new Set(threads)).toEqual(new Set([Math.max(started, 7)]));
  });

  it.runIf(fs.existsSync('/proc/self/autogroup'))("lowers its session's scheduling group when it leads the session, and only then", () => {
    const before = fs.readFileSync('/proc/self/autogroup', 'utf8').trim();
    const leader = threadNiceness(['vision'], 7, true);
    expect(leader.autogroup).toMatch(/ nice 7$/);
    expect(leader.autogroup).not.toEqual(before.replace(/ nice .*/, ' nice 7'));
    const inherited = threadNiceness(['vision'], 7);
    expect(inherited.autogroup).toEqual(before);
    expect(fs.readFileSync('/proc/self/autogroup', 'utf8').trim()).toEqual(before);
  });

  it('leaves a process that answers interactive requests, or a niceness of 0, as it was', () => {
    for (const [names, nice] of [[['interactive', 'vision'], 7], [['vision'], 0]] as const) {
      const { started, threads } = threadNiceness([...names], nice);
      expect(new Set(threads), names.join('+')).toEqual(new Set([started]));
    }
  });
});
