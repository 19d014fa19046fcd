/**
 * The supervisor on real processes: the local Chroma comes back after a SIGKILL with its data, and a
 * crash loop is restarted with growing delays that start over once the child stayed up long enough.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ChromaClient } from 'chromadb';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, localChromaCommand, waitForHeartbeat } from '../src/gallery/local-server.js';
import { createLogger } from '../src/logger.js';
import { CODE_ROOT, Supervisor, WORKER_NODE_FLAGS, type ChildExit, type RestartPolicy } from '../src/supervisor.js';
import { freePort } from './support/global-setup.js';

const logger = createLogger('silent', 'test-supervisor');
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(label: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `faceperks-${label}-`));
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

function supervise(policy: RestartPolicy): { supervisor: Supervisor; exits: ChildExit[] } {
  const supervisor = new Supervisor(process.cwd(), process.env, logger, policy);
  const exits: ChildExit[] = [];
  supervisor.on('exit', (exit) => exits.push(exit));
  cleanups.push(() => supervisor.stop(5000));
  return { supervisor, exits };
}

async function waitFor(probe: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('supervisor', () => {
  it('gives a worker run by `npm run worker` the Node flags it gives its own workers', async () => {
    const { scripts } = JSON.parse(await fs.readFile(path.join(CODE_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const worker = /\bnode ((?:--\S+ )*)dist\/workers\/runner\.js$/.exec(scripts.worker);
    expect(worker?.[1].trim().split(' ')).toEqual(WORKER_NODE_FLAGS);
  });

  it('restarts a SIGKILLed local Chroma, which answers again with its data kept', async () => {
    const chroma = localChromaCommand(await tempDir('supervised-chroma'), await freePort());
    const { supervisor, exits } = supervise({ firstDelayMs: 200, maxDelayMs: 1000, healthyAfterMs: 60_000 });
    supervisor.start({ name: 'chroma', script: chroma.script, args: chroma.args, quiet: true });
    await waitForHeartbeat(chroma.url, 60_000);

    const { hostname, port } = new URL(chroma.url);
    const client = new ChromaClient({ host: hostname, port: Number(port) });
    const vectors = Array.from({ length: 20 }, (_, i) => Array.from({ length: 8 }, (_, j) => Math.sin(i * 8 + j)));
    const ids = vectors.map((_, i) => `v${i}`);
    const before = await client.createCollection({ name: 'kept', embeddingFunction: null as never });
    await before.add({ ids, embeddings: vectors });

    const killed = supervisor.pid('chroma')!;
    process.kill(killed, 'SIGKILL');
    await waitFor(() => exits.length === 1, 10_000, 'the supervisor to see Chroma die');
    expect(exits[0]).toMatchObject({ name: 'chroma', signal: 'SIGKILL', restartInMs: 200 });
    await waitFor(async () => supervisor.pid('chroma') !== undefined && (await isAlive(chroma.url)), 60_000, 'Chroma to answer again');
    expect(supervisor.pid('chroma')).not.toBe(killed);

    const after = await client.getCollection({ name: 'kept', embeddingFunction: null as never });
    expect(await after.count()).toBe(ids.length);
    const stored = await after.get({ ids, include: ['embeddings' as never] });
    expect(stored.ids).toEqual(ids);
    stored.embeddings.forEach((embedding, i) => embedding.forEach((value, j) => expect(value).toBeCloseTo(vectors[i][j], 5)));
  });

  it('doubles the delay of a crash loop up to its cap, and starts over after a healthy life', async () => {
    const dir = await tempDir('crash-loop');
    const lives = path.join(dir, 'lives');
    const healthyAfterMs = 5000;
    // Lives 1-4 and 6 crash at once; life 5 outlives healthyAfterMs first.
    const script = path.join(dir, 'crash-loop.mjs');
    await fs.writeFile(
      script,
      `import fs from 'node:fs';
       fs.appendFileSync(${JSON.stringify(lives)}, 'x');
       const life = fs.readFileSync(${JSON.stringify(lives)}, 'utf8').length;
       setTimeout(() => process.exit(3), life === 5 ? ${healthyAfterMs + 1000} : 0);`,
    );
    const { supervisor, exits } = supervise({ firstDelayMs: 100, maxDelayMs: 400, healthyAfterMs });
    supervisor.start({ name: 'crasher', script, args: [] });

    await waitFor(() => exits.length >= 6, 60_000, 'six deaths');
    await supervisor.stop(5000);
    expect(exits.slice(0, 6).map((exit) => exit.code)).toEqual([3, 3, 3, 3, 3, 3]);
    expect(exits.slice(0, 6).map((exit) => exit.restartInMs)).toEqual([100, 200, 400, 400, 100, 200]);
  });
});
