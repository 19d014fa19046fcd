/**
 * A redis-server of the chaos run's own, on a port it names, keeping nothing on disk (as the spec
 * allows a production Redis to): it can be restarted empty without touching the machine's Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

export type PrivateRedis = {
  url: string;
  /** Stops the server, leaves it down for `downMs`, then starts a new, empty one on the same port. */
  restartEmpty(downMs: number): Promise<void>;
  stop(): Promise<void>;
};

export async function startPrivateRedis(port: number): Promise<PrivateRedis> {
  let server = await launch(port);
  return {
    url: `redis://127.0.0.1:${port}`,
    async restartEmpty(downMs) {
      await terminate(server);
      await new Promise((resolve) => setTimeout(resolve, downMs));
      server = await launch(port);
    },
    stop: () => terminate(server),
  };
}

async function launch(port: number): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const server = spawn('redis-server', args, { stdio: 'ignore' });
  let startError: Error | undefined;
  server.once('error', (error) => (startError = error));
  const deadline = Date.now() + 10_000;
  while (!(await answersPing(port))) {
    if (startError) throw new Error(`redis-server could not start: ${startError.message}`);
    if (server.exitCode !== null) throw new Error(`redis-server exited with code ${server.exitCode} (is port ${port} free?)`);
    if (Date.now() > deadline) {
      server.kill('SIGKILL');
      throw new Error(`redis-server did not answer on port ${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return server;
}

async function terminate(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  await exited;
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
    socket.once('error', () => done(false));
  });
}
