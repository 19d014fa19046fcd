/** Argument parsing helpers (node:util parseArgs) and the usage text. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const USAGE = `faceperks — FacePerks command line

Upload (device key):
  faceperks upload DIR|FILE... [--url URL] [--device-key KEY] [--wait]
      [--captured-at-from-mtime] [--batch-size N] [--batch-mb N] [--concurrency N]
      [--retries N] [--wait-timeout SECONDS] [--json] [--quiet] [--verbose]

  Sends every image under the directories (recursively; jpg jpeg png webp gif tif tiff avif heic)
  and the files named. Resumable: files this device already sent (by sha256) are skipped without
  re-sending their bytes, so rerunning after a crash or Ctrl-C picks up where it stopped.
    --url URL                  API base URL (default $FACEPERKS_URL)
    --device-key KEY           device key (default $FACEPERKS_DEVICE_KEY)
    --wait                     follow processing to the end and print done/failed/faces/members
    --captured-at-from-mtime   send each file's modification time as its capturedAt
                               (otherwise the server uses EXIF DateTimeOriginal, else receipt time)
    --batch-size N             files per request (default 20)
    --batch-mb N               megabytes per request at most (default 32; a bigger file goes alone)
    --concurrency N            requests in flight (default 4)
    --retries N                attempts per request on network errors, 429 and 5xx (default 8)
    --wait-timeout SECONDS     stop following after this long (default 0: no limit)
    --json                     print the summary as JSON on stdout
    --quiet                    no progress output (stderr)
    --verbose                  log every retry and request on stderr
  Exit status: 0 all files on the server (and, with --wait, processed); 1 some file was rejected,
  not sent, or failed; 2 usage, key or URL error; 130 interrupted.

Admin (admin key; a merchant key works for its own stores, devices and keys):
  faceperks admin create-merchant NAME
  faceperks admin merchant-key --merchant ID
  faceperks admin create-store --merchant ID --name NAME --timezone TZ
  faceperks admin create-device --store ID --name NAME
  faceperks admin device-key --device ID
  faceperks admin revoke-key KEY_ID
    --url URL                  API base URL (default $FACEPERKS_URL)
    --admin-key KEY            (default $FACEPERKS_ADMIN_KEY)
  Each prints the created resource as JSON on stdout; keys are shown once.

Reprocess (admin or merchant key): re-run captures through the pipeline, replacing their results
  faceperks reprocess --batch ID [--wait]
  faceperks reprocess --store ID --from ISO-8601 --to ISO-8601 [--wait]
  A background job restarts the captures a page at a time, pausing while the pipeline is busy.
  Prints {"jobId", "total"}; --wait follows it and prints {progress: {total, done, queued,
  imageGone}}: captures whose image was deleted after processing (KEEP_IMAGES=false) cannot re-run.

Reembed (admin key): switch recognition to another model pack (default, retinaface, insightface)
  faceperks reembed --pack NAME [--wait]
  A background job embeds every enrolled member face with the pack from the stored enrolment images,
  then makes it the active pack; workers restart on it. Until then recognition stays on the old pack.
  The pack's model files must be in MODELS_DIR of the workers (npm run setup -- --from DIR).
  Prints {"jobId", ...}; --wait follows the job and prints its result (exit 1 if it failed).
  Anonymous visitors are not carried over: they start afresh in the new pack.
`;

export type Options = NonNullable<ParseArgsConfig['options']>;

export type Parsed = { values: Record<string, string | boolean | undefined>; positionals: string[] };

export function parse(args: string[], options: Options): Parsed {
  try {
    const { values, positionals } = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' }, ...options }, allowPositionals: true, strict: true });
    return { values: values as Parsed['values'], positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function positiveInt(value: string | undefined, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return Number(value);
}

export function required(value: string | undefined, what: string): string {
  if (value === undefined || value === '') throw new UsageError(`missing ${what}`);
  return value;
}
