import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const chromaBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../node_modules/.bin/chroma');

export type LocalChroma = { url: string; process: ChildProcess; stop(): Promise<void> };

/** Starts the Chroma server bundled with the JS client (one process) and waits for its heartbeat. */
export async function startLocalChroma(dataDir: string, port: number, timeoutMs = 30_000): Promise<LocalChroma> {
  await fs.mkdir(dataDir, { recursive: true });
  const url = `http://127.0.0.1:${port}`;
  if (await isAlive(url)) throw new Error(`port ${port} already answers as a Chroma server; set CHROMA_URL=${url} to use it`);
  const child = spawn(chromaBin, ['run', '--path', dataDir, '--host', '127.0.0.1', '--port', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const deadline = Date.now() + timeoutMs;
  while (!(await isAlive(url))) {
    if (child.exitCode !== null) throw new Error(`chroma exited with ${child.exitCode}: ${stderr.trim()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`chroma did not answer on ${url} within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    url,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function isAlive(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/api/v2/heartbeat`, { signal: AbortSignal.timeout(1000) });
    return response.ok;
  } catch {
    return false;
  }
}
