/**
 * `faceperks` entry point: dispatches to the upload and admin commands and maps errors to exit
 * codes (1 failures, 2 usage/key/URL errors, 130 interrupted).
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { USAGE, UsageError } from './args.js';
import { adminCommand } from './commands/admin.js';
import { uploadCommand } from './commands/upload.js';
import { HttpError } from './http.js';
import { FatalError } from './uploader.js';

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    process.stderr.write(`\n${signal}: stopping; files not sent yet will be sent by the next run (Ctrl-C again to quit now)\n`);
    controller.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const [command, ...rest] = argv;
  try {
    if (!command || command === 'help' || command === '--help' || command === '-h') {
      process.stdout.write(USAGE);
      return command ? 0 : 2;
    }
    if (command === 'upload') return await uploadCommand(rest, env, controller.signal);
    if (command === 'admin') return await adminCommand(rest, env);
    if (command === 'reprocess') return await adminCommand(['reprocess', ...rest], env);
    if (command === 'reembed') return await adminCommand(['reembed', ...rest], env);
    throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  } catch (error) {
    if (controller.signal.aborted) return 130;
    if (error instanceof UsageError) {
      process.stderr.write(`faceperks: ${error.message}\n(faceperks --help for usage)\n`);
      return 2;
    }
    if (error instanceof FatalError) {
      process.stderr.write(`faceperks: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof HttpError) {
      process.stderr.write(`faceperks: ${error.message}\n`);
      return error.status !== null && error.status >= 400 && error.status < 500 && error.status !== 429 ? 2 : 1;
    }
    process.stderr.write(`faceperks: ${(error as Error).stack ?? error}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const entry = process.argv[1];
if (entry && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`faceperks: ${(error as Error).stack ?? error}\n`);
      process.exit(1);
    },
  );
}
