/**
 * Intake under saturation, the spec's target (accepted uploads answer at p99 < 100 ms): `robots`
 * devices, each with its own key, upload one photo a second for `seconds`, open loop (each upload
 * leaves on its schedule whatever became of the previous one), while the pipeline works through a
 * backlog queued before. Every upload is a distinct file: a repeat would be answered from the
 * capture already made, which is cheaper than a new one.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import sharp from 'sharp';
import { multipart } from './multipart.js';
import { addDevice, call, type RunningService } from './service-harness.js';
import { percentile } from './stats.js';

export type IntakeOptions = { robots: number; seconds: number };

export type IntakeResult = IntakeOptions & {
  backlog: number;
  /** Milliseconds from sending to the whole answer, of the uploads answered 202. */
  acceptedMs: number[];
  answers: { accepted: number; tooMany: number; other: number };
  /** Uploads that left more than LATE_MS after their scheduled time (a busy bench client). */
  lateSends: number;
  maxLateMs: number;
  /** Of the accepted captures, those done or failed when the window closed (read just after it). */
  finishedInWindow: number;
};

const LATE_MS = 10;
const ANSWER_TIMEOUT_MS = 30_000;
const BACKLOG_BATCH = 20;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * `count` JPEGs, each with bytes unlike every other and unlike the sources: the sources re-encoded
 * (upright, as a camera would send them) at a quality that steps down by one per round over them,
 * and once more where that still matches a photo already made (a source may be such a JPEG itself).
 */
export async function distinctPhotos(sources: Buffer[], count: number): Promise<Buffer[]> {
  const seen = new Set(sources.map(sha256));
  const unique = [...new Map(sources.map((bytes) => [sha256(bytes), bytes])).values()];
  const lowestQuality = 50;
  const encode = async (i: number): Promise<Buffer> => {
    for (let quality = 95 - Math.floor(i / unique.length); quality >= lowestQuality; quality--) {
      const photo = await sharp(unique[i % unique.length]).rotate().jpeg({ quality }).toBuffer();
      const hash = sha256(photo);
      if (!seen.has(hash)) {
        seen.add(hash);
        return photo;
      }
    }
    throw new Error(`${count} distinct photos from ${unique.length} need JPEG qualities below ${lowestQuality}; use a larger dataset`);
  };
  const photos: Buffer[] = [];
  // Two at a time: sharp's own threads already use the cores.
  for (let i = 0; i < count; i += 2) photos.push(...(await Promise.all([encode(i), ...(i + 1 < count ? [encode(i + 1)] : [])])));
  return photos;
}

/** Queues `photos` from a device of their own, in requests of BACKLOG_BATCH, without waiting for them. */
async function queueBacklog(service: RunningService, storeId: string, photos: Buffer[]): Promise<void> {
  const deviceKey = await addDevice(service, storeId, 'backlog');
  for (let i = 0; i < photos.length; i += BACKLOG_BATCH) {
    const form = new FormData();
    photos.slice(i, i + BACKLOG_BATCH).forEach((bytes, j) => form.append('images', new Blob([new Uint8Array(bytes)]), `backlog-${i + j}.jpg`));
    await call(service.api, deviceKey, 'POST', '/v1/captures', form);
  }
}

/** An upload with its multipart body encoded before the window, so sending it costs the client little. */
type Send = { atMs: number; deviceKey: string; body: Buffer; contentType: string };
type Answer = { status: number | 'error'; ms: number; batchId?: string };

/**
 * One upload over node:http. The client shares the service's two cores, so it must cost little:
 * fetch with FormData spent several ms of CPU per upload encoding the body through web streams.
 */
function upload(api: string, agent: http.Agent, send: Send): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve) => {
    const request = http.request(
      `${api}/v1/captures`,
      {
        method: 'POST',
        agent,
        timeout: ANSWER_TIMEOUT_MS,
        headers: { authorization: `Bearer ${send.deviceKey}`, 'content-type': send.contentType, 'content-length': send.body.length },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const ms = performance.now() - started;
          let batchId: string | undefined;
          try {
            batchId = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { batchId?: string }).batchId;
          } catch {
            // Not JSON: counted by its status.
          }
          resolve({ status: response.statusCode ?? 'error', ms, batchId });
        });
        response.on('error', () => resolve({ status: 'error', ms: performance.now() - started }));
      },
    );
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', () => resolve({ status: 'error', ms: performance.now() - started }));
    request.end(send.body);
  });
}

/** How many of the batches are done (each robot upload is a batch of one capture). */
async function finishedBatches(service: RunningService, deviceKeyOf: Map<string, string>): Promise<number> {
  const ids = [...deviceKeyOf.keys()];
  let finished = 0;
  const parallel = 8;
  for (let i = 0; i < ids.length; i += parallel) {
    const batches = await Promise.all(ids.slice(i, i + parallel).map((id) => call(service.api, deviceKeyOf.get(id)!, 'GET', `/v1/batches/${id}`)));
    finished += batches.filter((batch) => batch.status === 'done').length;
  }
  return finished;
}

/**
 * Runs the scenario in `storeId`: `backlog` queued first, then `robots × seconds` uploads of
 * `photos` (at least that many, all distinct), robot r sending at r/robots of every second.
 */
export async function runIntake(
  service: RunningService,
  storeId: string,
  backlog: Buffer[],
  photos: Buffer[],
  options: IntakeOptions,
): Promise<IntakeResult> {
  const { robots, seconds } = options;
  if (photos.length < robots * seconds) throw new Error(`the intake scenario needs ${robots * seconds} photos, got ${photos.length}`);
  const deviceKeys: string[] = [];
  for (let r = 0; r < robots; r++) deviceKeys.push(await addDevice(service, storeId, `robot ${r + 1}`));
  const sends: Send[] = [];
  for (let second = 0; second < seconds; second++) {
    for (let r = 0; r < robots; r++) {
      const body = multipart([{ name: 'images', file: photos[sends.length], filename: `robot-${r + 1}-${second}.jpg` }]);
      sends.push({ atMs: (second + r / robots) * 1000, deviceKey: deviceKeys[r], ...body });
    }
  }
  await queueBacklog(service, storeId, backlog);

  // Each robot keeps its connection open between uploads, as a device on a store's network would.
  const agent = new http.Agent({ keepAlive: true, maxSockets: robots * 2 });
  const answers: Promise<Answer>[] = [];
  let lateSends = 0;
  let maxLateMs = 0;
  const start = performance.now();
  for (const send of sends) {
    const wait = start + send.atMs - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const lateMs = performance.now() - start - send.atMs;
    if (lateMs > LATE_MS) lateSends++;
    maxLateMs = Math.max(maxLateMs, lateMs);
    answers.push(upload(service.api, agent, send));
  }
  const answered = await Promise.all(answers);
  agent.destroy();
  const deviceKeyOf = new Map<string, string>();
  answered.forEach((answer, i) => answer.status === 202 && answer.batchId && deviceKeyOf.set(answer.batchId, sends[i].deviceKey));
  const finishedInWindow = await finishedBatches(service, deviceKeyOf);

  const accepted = answered.filter((answer) => answer.status === 202);
  const tooMany = answered.filter((answer) => answer.status === 429).length;
  return {
    ...options,
    backlog: backlog.length,
    acceptedMs: accepted.map((answer) => answer.ms),
    answers: { accepted: accepted.length, tooMany, other: answered.length - accepted.length - tooMany },
    lateSends,
    maxLateMs,
    finishedInWindow,
  };
}

export function printIntake(result: IntakeResult): void {
  const { robots, seconds, acceptedMs, answers } = result;
  const ms = (p: number) => (acceptedMs.length > 0 ? percentile(acceptedMs, p).toFixed(1) : 'n/a');
  const max = acceptedMs.length > 0 ? Math.max(...acceptedMs).toFixed(1) : 'n/a';
  console.log(`\nintake under saturation: ${robots} robots (own keys) × 1 photo/s for ${seconds} s, open loop, after a backlog of ${result.backlog} captures`);
  console.log('\n| uploads | 202 | 429 | other | p50 ms | p95 ms | p99 ms | max ms |\n|---:|---:|---:|---:|---:|---:|---:|---:|');
  console.log(`| ${robots * seconds} | ${answers.accepted} | ${answers.tooMany} | ${answers.other} | ${ms(50)} | ${ms(95)} | ${ms(99)} | ${max} |`);
  console.log(`(latencies of the 202 answers; sends more than ${LATE_MS} ms behind schedule: ${result.lateSends}, the latest ${result.maxLateMs.toFixed(1)} ms)`);
  console.log(`pipeline saturated: ${result.finishedInWindow} of the ${answers.accepted} accepted captures were finished just after the window`);
  console.log(`intake p99 under saturation: ${ms(99)} ms (spec: < 100 ms, goal 50)`);
}
