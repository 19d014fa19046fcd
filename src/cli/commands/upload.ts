/** `faceperks upload DIR|FILE...`: resumable bulk upload, optionally followed to the end (--wait). */
import { parse, positiveInt, required, UsageError } from '../args.js';
import { findFiles } from '../files.js';
import { followRun, type FollowResult } from '../follow.js';
import { ApiClient, DEFAULT_RETRY } from '../http.js';
import { Progress, type ProgressMode } from '../progress.js';
import { exitCodeOf, formatSummary, summarize } from '../summary.js';
import { uploadFiles } from '../uploader.js';

export async function uploadCommand(argv: string[], env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<number> {
  const { values, positionals } = parse(argv, {
    url: { type: 'string' },
    'device-key': { type: 'string' },
    wait: { type: 'boolean' },
    'captured-at-from-mtime': { type: 'boolean' },
    'batch-size': { type: 'string' },
    'batch-mb': { type: 'string' },
    concurrency: { type: 'string' },
    retries: { type: 'string' },
    'wait-timeout': { type: 'string' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
    verbose: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write((await import('../args.js')).USAGE);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('name one or more directories or image files to upload');
  const url = required((values.url as string | undefined) ?? env.FACEPERKS_URL, '--url (or FACEPERKS_URL)');
  const key = required((values['device-key'] as string | undefined) ?? env.FACEPERKS_DEVICE_KEY, '--device-key (or FACEPERKS_DEVICE_KEY)');
  const batchSize = positiveInt(values['batch-size'] as string | undefined, 'batch-size', 20);
  const batchMb = positiveInt(values['batch-mb'] as string | undefined, 'batch-mb', 32);
  const concurrency = positiveInt(values.concurrency as string | undefined, 'concurrency', 4);
  const attempts = positiveInt(values.retries as string | undefined, 'retries', DEFAULT_RETRY.attempts);
  const waitTimeout = positiveInt(values['wait-timeout'] as string | undefined, 'wait-timeout', 0, 0);

  const mode: ProgressMode = values.quiet ? 'none' : process.stderr.isTTY ? 'tty' : 'plain';
  const plainEvery = positiveInt(env.FACEPERKS_PROGRESS_INTERVAL_MS, 'FACEPERKS_PROGRESS_INTERVAL_MS', 5000);
  const progress = new Progress(mode, process.stderr, plainEvery);
  const trace = values.verbose ? (line: string) => progress.log(line) : undefined;
  let client: ApiClient;
  try {
    client = new ApiClient(url, key, { ...DEFAULT_RETRY, attempts, baseDelayMs: positiveInt(env.FACEPERKS_RETRY_BASE_MS, 'FACEPERKS_RETRY_BASE_MS', DEFAULT_RETRY.baseDelayMs) }, 120_000, trace);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }

  const { files, missing } = await findFiles(positionals);
  if (missing.length) throw new UsageError(`not found: ${missing.join(', ')}`);
  if (files.length === 0) throw new UsageError(`no image files under ${positionals.join(', ')}`);

  const run = await uploadFiles(
    client,
    files,
    { batchSize, batchBytes: batchMb * 1_000_000, concurrency, hashConcurrency: 4, capturedAtFromMtime: Boolean(values['captured-at-from-mtime']), signal },
    progress,
  );
  let follow: FollowResult | undefined;
  if (values.wait) follow = await followRun(client, run, progress, { pollMs: 2000, timeoutMs: waitTimeout * 1000, signal });
  signal.throwIfAborted();
  const summary = summarize(run, follow);
  if (values.json) {
    const files = run.results.map((r) => ({
      path: r.file.display,
      sha256: r.sha256,
      outcome: r.outcome,
      captureId: r.captureId,
      batchId: r.batchId,
      status: r.status,
      ...(r.error ? { error: r.error } : {}),
      ...(follow && r.captureId ? { faces: follow.details.get(r.captureId)?.faces.length ?? 0 } : {}),
    }));
    process.stdout.write(`${JSON.stringify({ ...summary, exitCode: exitCodeOf(summary), results: files }, null, 2)}\n`);
  } else {
    process.stdout.write(`${formatSummary(summary)}\n`);
  }
  return exitCodeOf(summary);
}
