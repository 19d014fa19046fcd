import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

/** The Chroma server bundled with the JS client: a Node program (its `chroma` bin), found wherever npm put the package. */
const chromaCli = (() => {
  const require = createRequire(import.meta.url);
  // The package exports no ./package.json: find its folder from its entry point.
  let dir = path.dirname(require.resolve('chromadb'));
  while (!existsSync(path.join(dir, 'package.json')) || !dir.endsWith(`${path.sep}chromadb`)) dir = path.dirname(dir);
  const { bin } = require(path.join(dir, 'package.json')) as { bin: { chroma: string } };
  return path.join(dir, bin.chroma);
})();

/** How to run a local Chroma server on `port` keeping its data in `dataDir`: a Node script and its arguments. */
export type ChromaCommand = { script: string; args: string[]; url: string };

export function localChromaCommand(dataDir: string, port: number): ChromaCommand {
  return {
    script: chromaCli,
    args: ['run', '--path', dataDir, '--host', '127.0.0.1', '--port', String(port)],
    url: `http://127.0.0.1:${port}`,
  };
}

export type LocalChroma = { url: string; process: ChildProcess; stop(): Promise<void> };

/**
 * Starts one unsupervised Chroma server and waits for its heartbeat (tests and benchmarks; `npm start`
 * runs it under the supervisor instead, see src/service.ts).
 */
export async function startLocalChroma(dataDir: string, port: number, timeoutMs = 30_000): Promise<LocalChroma> {
  await fs.mkdir(dataDir, { recursive: true });
  const command = localChromaCommand(dataDir, port);
  await refuseTakenPort(command.url);
  const child = fork(command.script, command.args, { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    await waitForHeartbeat(command.url, timeoutMs, () => (child.exitCode !== null ? `chroma exited with ${child.exitCode}: ${stderr.trim()}` : undefined));
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    url: command.url,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Fails when something already answers as Chroma on `url`: two servers must not share a port or a folder. */
export async function refuseTakenPort(url: string): Promise<void> {
  if (await isAlive(url)) throw new Error(`${url} already answers as a Chroma server; set CHROMA_URL=${url} to use it`);
}

/**
 * Polls the heartbeat until it answers; `failure` names a reason to stop waiting early (the server
 * exited), or returns undefined to keep waiting.
 */
export async function waitForHeartbeat(url: string, timeoutMs: number, failure: () => string | undefined = () => undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await isAlive(url))) {
    const reason = failure();
    if (reason) throw new Error(reason);
    if (Date.now() > deadline) throw new Error(`chroma did not answer on ${url} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export async function isAlive(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/api/v2/heartbeat`, { signal: AbortSignal.timeout(1000) });
    return response.ok;
  } catch {
    return false;
  }
}
