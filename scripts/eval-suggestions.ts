/**
 * `npm run eval:suggestions -- [--dataset DIR] [--json FILE] [--floor 0.2] [--visitor-threshold X] [--member-threshold X] [--seed N]`
 *
 * Suggested merges (GET /v1/visitors/suggestions) as a merchant sees them, over a folder with
 * MANIFEST.tsv (scripts/dataset.ts), through the public API of the whole service on a throwaway
 * database. As in eval:service, every other identity with two or more photos is enrolled as a member
 * (its first photo that enrols) and every other photo is uploaded by one robot of one store in
 * shuffled order, 40 minutes apart. The service stores suggestions down to `--floor`, so one run
 * gives the figures at every cut-off above it:
 * - true pairs: two subjects (visitors, or a visitor and a member) of one identity, i.e. a person the
 *   matcher split; found = suggested at the cut-off, of all such pairs;
 * - false pairs: suggestions joining two identities; pairs with an unlabelled side (faces of group
 *   and unlabelled photos) are counted apart.
 * A subject's identity is that of the labelled photos (largest face) it was given, the most frequent
 * one if several. The photos are read in place; nothing is copied into the project.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultDataset, isLabelled, memberSplit, readManifest, shuffle, type ManifestRow } from './dataset.js';
import { ApiCallError, call, createTenant, prepareService, startService, uploadAndWait, type RunningService, type Tenant } from './service-harness.js';
import { percentile } from './stats.js';

const { values: args } = parseArgs({
  options: {
    dataset: { type: 'string', default: process.env.FACEPERKS_DATASET ?? defaultDataset() },
    json: { type: 'string' },
    floor: { type: 'string', default: '0.2' },
    'visitor-threshold': { type: 'string' },
    'member-threshold': { type: 'string' },
    seed: { type: 'string', default: '1' },
  },
});

const CAPTURE_SPACING_MINUTES = 40;
const FIRST_CAPTURE = Date.parse('2026-11-02T08:00:00Z');
const ENROL_TRIES = 3;
const CUTOFFS = [0.2, 0.25, 0.28, 0.3, 0.32, 0.34, 0.36, 0.38, 0.4];

type Match = { kind: 'member' | 'visitor'; personId?: string; visitorId?: string };
type Capture = { status: string; faces: { box: { width: number; height: number }; match?: Match | null }[] };
type Suggestion = { a: { kind: string; id: string }; b: { kind: string; id: string }; similarity: number };

const ratio = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 10_000) / 10_000 : null);
const pairKey = (x: string, y: string) => (x < y ? `${x}|${y}` : `${y}|${x}`);

async function enrol(service: RunningService, tenant: Tenant, dataset: string, identity: string, rows: ManifestRow[]) {
  const person = await call(service.api, tenant.merchantKey, 'POST', '/v1/people', { displayName: identity });
  for (const row of rows.slice(0, ENROL_TRIES)) {
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(await fs.readFile(path.join(dataset, row.path)))]), path.basename(row.path));
    try {
      await call(service.api, tenant.merchantKey, 'POST', `/v1/people/${person.id}/faces`, form);
      return { personId: person.id as string, photo: row.path };
    } catch (error) {
      if (!(error instanceof ApiCallError) || error.status !== 422) throw error;
    }
  }
  return null;
}

/** Every page of the merchant's suggestions, with each page request's latency. */
async function allSuggestions(service: RunningService, tenant: Tenant) {
  const items: Suggestion[] = [];
  const latencies: number[] = [];
  let cursor: string | null = null;
  do {
    const started = performance.now();
    const page = await call(service.api, tenant.merchantKey, 'GET', `/v1/visitors/suggestions?limit=50${cursor ? `&cursor=${cursor}` : ''}`);
    latencies.push(performance.now() - started);
    items.push(...(page.items as Suggestion[]));
    cursor = page.nextCursor as string | null;
  } while (cursor);
  return { items, latencies };
}

function largestFace(capture: Capture) {
  return capture.faces.reduce<Capture['faces'][number] | undefined>((best, face) => (!best || face.box.width * face.box.height > best.box.width * best.box.height ? face : best), undefined);
}

async function main(): Promise<void> {
  const dataset = path.resolve(args.dataset);
  const seed = Number(args.seed);
  const rows = readManifest(dataset);
  const { photosOf: byIdentity, memberIdentities } = memberSplit(rows);
  const overrides = {
    SUGGESTION_THRESHOLD: args.floor,
    ...(args['visitor-threshold'] ? { VISITOR_THRESHOLD: args['visitor-threshold'] } : {}),
    ...(args['member-threshold'] ? { MEMBER_THRESHOLD: args['member-threshold'] } : {}),
  };
  const service = await startService(prepareService('evalsug', overrides));
  try {
    const { MEMBER_THRESHOLD, VISITOR_THRESHOLD } = service.config;
    const tenant = await createTenant(service, 'Suggest');
    console.log(`eval:suggestions over ${rows.length} photos of ${dataset} (member ${MEMBER_THRESHOLD}, visitor ${VISITOR_THRESHOLD}, floor ${args.floor})`);
    /** Each subject's identities, by photos given to it. */
    const labels = new Map<string, Map<string, number>>();
    const label = (subjectId: string, identity: string) => {
      const counts = labels.get(subjectId) ?? new Map<string, number>();
      labels.set(subjectId, counts.set(identity, (counts.get(identity) ?? 0) + 1));
    };
    const kinds = new Map<string, 'member' | 'visitor'>();
    const enrolled = new Set<string>();
    for (const identity of memberIdentities) {
      const member = await enrol(service, tenant, dataset, identity, byIdentity.get(identity)!);
      if (!member) continue;
      enrolled.add(member.photo);
      kinds.set(member.personId, 'member');
      label(member.personId, identity);
    }

    const probes = shuffle(rows.filter((row) => !enrolled.has(row.path)), seed);
    const uploads = await Promise.all(
      probes.map(async (row, i) => ({
        name: path.basename(row.path),
        bytes: await fs.readFile(path.join(dataset, row.path)),
        capturedAt: new Date(FIRST_CAPTURE + i * CAPTURE_SPACING_MINUTES * 60_000).toISOString(),
      })),
    );
    console.log(`uploading ${probes.length} captures…`);
    const { outcomes } = await uploadAndWait(service.api, tenant.deviceKey, uploads, 20);
    for (const [i, outcome] of outcomes.entries()) {
      if (!('captureId' in outcome)) continue;
      const capture = (await call(service.api, tenant.deviceKey, 'GET', `/v1/captures/${outcome.captureId}`)) as unknown as Capture;
      if (capture.status !== 'done') continue;
      for (const face of capture.faces) if (face.match) kinds.set((face.match.personId ?? face.match.visitorId)!, face.match.kind);
      const match = largestFace(capture)?.match;
      if (match && isLabelled(probes[i])) label((match.personId ?? match.visitorId)!, probes[i].identity);
    }
    const identityOf = (subjectId: string) => {
      const counts = labels.get(subjectId);
      return counts ? [...counts].sort((x, y) => y[1] - x[1])[0][0] : null;
    };

    // Every pair of subjects of one identity that a merge would join (not two members).
    const subjectsOf = new Map<string, string[]>();
    for (const subjectId of labels.keys()) subjectsOf.set(identityOf(subjectId)!, [...(subjectsOf.get(identityOf(subjectId)!) ?? []), subjectId]);
    const splitPairs = new Set<string>();
    for (const subjects of subjectsOf.values()) {
      for (let i = 0; i < subjects.length; i++) {
        for (let j = i + 1; j < subjects.length; j++) if (kinds.get(subjects[i]) !== 'member' || kinds.get(subjects[j]) !== 'member') splitPairs.add(pairKey(subjects[i], subjects[j]));
      }
    }

    const { items, latencies } = await allSuggestions(service, tenant);
    const count = (kind: 'member' | 'visitor') => [...kinds.values()].filter((k) => k === kind).length;
    const table = CUTOFFS.filter((cutoff) => cutoff >= Number(args.floor)).map((cutoff) => {
      const offered = items.filter((s) => s.similarity >= cutoff);
      const known = offered.filter((s) => identityOf(s.a.id) !== null && identityOf(s.b.id) !== null);
      const found = new Set(known.filter((s) => identityOf(s.a.id) === identityOf(s.b.id)).map((s) => pairKey(s.a.id, s.b.id)));
      return {
        cutoff,
        suggestions: offered.length,
        'true pairs found': `${found.size} / ${splitPairs.size}`,
        'false pairs': known.length - found.size,
        'with an unlabelled side': offered.length - known.length,
        'visitor–member': offered.filter((s) => s.b.kind === 'member').length,
        precision: ratio(found.size, known.length),
      };
    });
    const report = {
      dataset,
      seed,
      thresholds: { member: MEMBER_THRESHOLD, visitor: VISITOR_THRESHOLD, floor: Number(args.floor) },
      members: count('member'),
      visitors: count('visitor'),
      splitIdentities: [...subjectsOf.values()].filter((subjects) => subjects.length > 1).length,
      splitPairs: splitPairs.size,
      table,
      listing: { pages: latencies.length, p50Ms: Math.round(percentile(latencies, 50)), maxMs: Math.round(Math.max(...latencies)) },
    };
    console.log(`${report.visitors} visitors, ${report.splitIdentities} identities split over several subjects (${report.splitPairs} pairs to join)`);
    console.table(table);
    console.log(`listing: ${report.listing.pages} pages of 50, p50 ${report.listing.p50Ms} ms, max ${report.listing.maxMs} ms`);
    if (args.json) {
      await fs.writeFile(args.json, `${JSON.stringify(report, null, 2)}\n`);
      console.log(`wrote ${args.json}`);
    }
  } finally {
    await service.stop();
  }
}

main().catch((error) => {
  console.error(`eval:suggestions failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
