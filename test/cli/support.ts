/** Helpers for CLI tests: run `faceperks` as a real child process, and a fault-injecting HTTP proxy. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '../..');

export type CliResult = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; json?: any };

/** Starts `node --import tsx src/cli/main.ts ...args`; `done` settles when it exits. */
export function startCli(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: REPO,
    env: { ...process.env, FACEPERKS_RETRY_BASE_MS: '50', FACEPERKS_PROGRESS_INTERVAL_MS: '1000', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => {
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        /* not --json */
      }
      resolve({ code, signal, stdout, stderr, json });
    });
  });
  return { child, done };
}

export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return startCli(args, env).done;
}

export type Seen = { method: string; path: string; bytes: number; status: number | 'reset' };

/** What the proxy does with a request: forward it, answer it itself, or cut the connection. */
export type Decision = 'forward' | 'reset' | { status: number; headers?: Record<string, string>; body?: unknown; delayMs?: number };

/**
 * A proxy in front of the API that records every request (method, path, request bytes, answer)
 * and lets a test inject 429/503 answers or connection resets, or delay forwarding.
 */
export async function startProxy(target: string, decide: (req: http.IncomingMessage, n: number) => Decision | Promise<Decision> = () => 'forward') {
  const seen: Seen[] = [];
  const listeners: ((s: Seen) => void)[] = [];
  let count = 0;
  const record = (s: Seen) => {
    seen.push(s);
    for (const l of listeners) l(s);
  };
  const server = http.createServer(async (req, res) => {
    const n = ++count;
    const decision = await decide(req, n);
    const base = { method: req.method!, path: req.url! };
    if (decision === 'reset') {
      // Read part of the body, then drop the connection as a crashing server would.
      let bytes = 0;
      req.on('data', (d: Buffer) => {
        bytes += d.length;
        if (bytes > 1000) req.socket.destroy();
      });
      req.on('end', () => req.socket.destroy());
      req.socket.on('close', () => record({ ...base, bytes, status: 'reset' }));
      return;
    }
    if (decision !== 'forward') {
      let bytes = 0;
      req.on('data', (d: Buffer) => (bytes += d.length));
      req.on('end', async () => {
        if (decision.delayMs) await new Promise((r) => setTimeout(r, decision.delayMs));
        res.writeHead(decision.status, { 'content-type': 'application/json', ...decision.headers });
        res.end(JSON.stringify(decision.body ?? { error: { code: 'injected', message: `injected ${decision.status}` } }));
        record({ ...base, bytes, status: decision.status });
      });
      return;
    }
    let bytes = 0;
    const upstream = http.request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
      up.on('end', () => record({ ...base, bytes, status: up.statusCode! }));
    });
    upstream.on('error', () => res.destroy());
    req.on('data', (d: Buffer) => (bytes += d.length));
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    onRecord(listener: (s: Seen) => void) {
      listeners.push(listener);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export async function writeFiles(root: string, files: Record<string, Buffer | string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const full = path.join(root, rel);
    await fs.mkdir(path.dirname(full), { recursive: true });
    await fs.writeFile(full, content);
  }
}
