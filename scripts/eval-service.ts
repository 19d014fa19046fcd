/**
 * `npm run eval:service -- [--dataset DIR] [--json FILE] [--batch-size N] [--seed N]`
 *
 * Recognition as an outside client sees it: the whole service started on a throwaway database, and
 * driven through its public API only, over a folder with MANIFEST.tsv (see scripts/dataset.ts).
 * - Identities with two or more photos are split in two by sorted name: every other one becomes a
 *   member, enrolled with its first photo that enrols (POST /v1/people, /v1/people/:id/faces); the
 *   rest are strangers, never enrolled.
 * - Every other photo (members' other photos, strangers, face-less, group and unlabelled photos) is
 *   uploaded by one robot in shuffled order, 40 minutes of capture time apart, so that each sighting
 *   is a visit of its own.
 * - Read back through GET /v1/captures/:id (the largest face of each labelled photo):
 *   members recognised as themselves, as someone else, or as visitors; strangers taken for a member;
 *   strangers' visitor ids against their identities (pairwise precision and recall: split visitors
 *   and merged strangers); POST /v1/identify on the same photos.
 * - Checks that the analytics and perks agree with the captures: visits, member visits and new
 *   visitors per the traffic endpoint, and each member's points.
 * The photos are read in place; nothing is copied into the project.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultDataset, isLabelled, memberSplit, readManifest, shuffle, type ManifestRow } from './dataset.js';
import { ApiCallError, call, createTenant, prepareService, startService, uploadAndWait, type Json, type RunningService, type Tenant } from './service-harness.js';
import { percentile } from './stats.js';

const { values: args } = parseArgs({
  options: {
    dataset: { type: 'string', default: process.env.FACEPERKS_DATASET ?? defaultDataset() },
    json: { type: 'string' },
    'batch-size': { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
  },
});

const CAPTURE_SPACING_MINUTES = 40;
const FIRST_CAPTURE = Date.parse('2026-11-02T08:00:00Z');
const ENROL_TRIES = 3;

type Match = { kind: 'member' | 'visitor'; personId?: string; visitorId?: string; similarity: number };
type CaptureFace = { box: { width: number; height: number }; match?: Match | null };
type Capture = { id: string; status: string; error?: { code: string }; faces: CaptureFace[] };
type Probe = ManifestRow & { role: 'member' | 'stranger' | 'other'; capturedAt: string; captureId?: string; rejected?: string; capture?: Capture };

const ratio = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 10_000) / 10_000 : null);

function largestFace<F extends { box: { width: number; height: number } }>(faces: F[]): F | undefined {
  let best: F | undefined;
  for (const face of faces) if (!best || face.box.width * face.box.height > best.box.width * best.box.height) best = face;
  return best;
}

/** Runs `task` over `items` with at most `limit` at once. */
async function forEachLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) await task(items[i]);
  };
  await Promise.all(Array.from({ length: limit }, lane));
}

async function enrolMembers(service: RunningService, tenant: Tenant, dataset: string, members: Map<string, ManifestRow[]>) {
  const personOf = new Map<string, string>();
  const enrolledWith = new Set<string>();
  const refusals: string[] = [];
  for (const [identity, rows] of members) {
    const person = await call(service.api, tenant.merchantKey, 'POST', '/v1/people', { displayName: identity, externalId: identity });
    for (const row of rows.slice(0, ENROL_TRIES)) {
      const form = new FormData();
      form.append('image', new Blob([new Uint8Array(await fs.readFile(path.join(dataset, row.path)))]), path.basename(row.path));
      try {
        await call(service.api, tenant.merchantKey, 'POST', `/v1/people/${person.id}/faces`, form);
        personOf.set(identity, person.id as string);
        enrolledWith.add(row.path);
        break;
      } catch (error) {
        if (!(error instanceof ApiCallError) || error.status !== 422) throw error;
        refusals.push(`${row.path}: ${(error.body.error as { code: string }).code}`);
      }
    }
  }
  return { personOf, enrolledWith, refusals };
}

/** Pairs of strangers' photos: same identity and same visitor, counted both ways. */
function visitorPairs(strangers: { identity: string; visitorId: string }[]) {
  let sameBoth = 0;
  let sameIdentity = 0;
  let sameVisitor = 0;
  for (let i = 0; i < strangers.length; i++) {
    for (let j = i + 1; j < strangers.length; j++) {
      const identity = strangers[i].identity === strangers[j].identity;
      const visitor = strangers[i].visitorId === strangers[j].visitorId;
      if (identity) sameIdentity++;
      if (visitor) sameVisitor++;
      if (identity && visitor) sameBoth++;
    }
  }
  const visitorsPer = new Map<string, Set<string>>();
  const identitiesPer = new Map<string, Set<string>>();
  for (const { identity, visitorId } of strangers) {
    visitorsPer.set(identity, (visitorsPer.get(identity) ?? new Set()).add(visitorId));
    identitiesPer.set(visitorId, (identitiesPer.get(visitorId) ?? new Set()).add(identity));
  }
  return {
    photos: strangers.length,
    identities: visitorsPer.size,
    visitors: identitiesPer.size,
    pairPrecision: ratio(sameBoth, sameVisitor),
    pairRecall: ratio(sameBoth, sameIdentity),
    splitIdentities: [...visitorsPer.values()].filter((v) => v.size > 1).length,
    mergedVisitors: [...identitiesPer.values()].filter((v) => v.size > 1).length,
  };
}

async function identifyAll(service: RunningService, tenant: Tenant, dataset: string, probes: Probe[], personOf: Map<string, string>) {
  const latencies: number[] = [];
  let memberProbes = 0;
  let memberCorrect = 0;
  let strangerProbes = 0;
  let strangerAccepted = 0;
  for (const probe of probes) {
    if (probe.role === 'other') continue;
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(await fs.readFile(path.join(dataset, probe.path)))]), path.basename(probe.path));
    const started = performance.now();
    let faces: { box: { width: number; height: number }; matches: { personId: string }[] }[];
    try {
      faces = (await call(service.api, tenant.merchantKey, 'POST', '/v1/identify?limit=1', form)).faces as typeof faces;
    } catch (error) {
      if (!(error instanceof ApiCallError) || error.status !== 422) throw error;
      faces = [];
    }
    latencies.push(performance.now() - started);
    const face = largestFace(faces);
    if (!face) continue;
    const top = face.matches[0]?.personId;
    if (probe.role === 'member') {
      memberProbes++;
      if (top === personOf.get(probe.identity)) memberCorrect++;
    } else {
      strangerProbes++;
      if (top) strangerAccepted++;
    }
  }
  return {
    memberProbes,
    memberCorrect: ratio(memberCorrect, memberProbes),
    strangerProbes,
    strangerFalseAccept: ratio(strangerAccepted, strangerProbes),
    p50Ms: Math.round(percentile(latencies, 50)),
    p95Ms: Math.round(percentile(latencies, 95)),
  };
}

/** Analytics and perks recomputed from the captures, against what the API answers. */
async function consistency(service: RunningService, tenant: Tenant, probes: Probe[], personOf: Map<string, string>) {
  const sightings = probes.flatMap((p) => (p.capture?.status === 'done' ? p.capture.faces : [])).flatMap((f) => (f.match ? [f.match] : []));
  const memberSightings = sightings.filter((m) => m.kind === 'member');
  const last = FIRST_CAPTURE + probes.length * CAPTURE_SPACING_MINUTES * 60_000;
  const query = `from=${new Date(FIRST_CAPTURE).toISOString()}&to=${new Date(last + 86_400_000).toISOString()}&interval=day`;
  const traffic = await call(service.api, tenant.merchantKey, 'GET', `/v1/stores/${tenant.storeId}/analytics/traffic?${query}`);
  const sum = (field: string) => (traffic.buckets as Json[]).reduce((total, bucket) => total + (bucket[field] as number), 0);
  let pointsAgree = 0;
  for (const personId of personOf.values()) {
    const person = await call(service.api, tenant.merchantKey, 'GET', `/v1/people/${personId}`);
    const seen = memberSightings.filter((m) => m.personId === personId).length;
    if (person.points === seen * service.config.PERK_POINTS) pointsAgree++;
  }
  const rows = [
    { figure: 'visits', captures: sightings.length, analytics: sum('visits') },
    { figure: 'member visits', captures: memberSightings.length, analytics: sum('memberVisits') },
    { figure: 'new visitors', captures: new Set(sightings.flatMap((m) => (m.visitorId ? [m.visitorId] : []))).size, analytics: sum('newVisitors') },
    { figure: `members whose points = ${service.config.PERK_POINTS} x sightings`, captures: personOf.size, analytics: pointsAgree },
  ];
  return { rows, agree: rows.every((r) => r.captures === r.analytics) };
}

async function main(): Promise<void> {
  const dataset = path.resolve(args.dataset);
  const seed = Number(args.seed);
  const rows = readManifest(dataset);
  const split = memberSplit(rows);
  const byIdentity = split.photosOf;
  const memberIdentities = new Set(split.memberIdentities);

  // Identify sends every photo again through the interactive path, faster than a merchant's
  // default interactive rate (300 a minute): lift it for this one evaluation tenant.
  const service = await startService(prepareService('evalsvc', { MERCHANT_INTERACTIVE_PER_MINUTE: '100000', MERCHANT_INTERACTIVE_BURST: '100000' }));
  try {
    const tenant = await createTenant(service, 'Eval');
    console.log(`eval:service over ${rows.length} photos of ${dataset}: enrolling ${memberIdentities.size} members…`);
    const members = new Map([...memberIdentities].map((identity) => [identity, byIdentity.get(identity)!]));
    const { personOf, enrolledWith, refusals } = await enrolMembers(service, tenant, dataset, members);

    const role = (row: ManifestRow): Probe['role'] =>
      !isLabelled(row) ? 'other' : memberIdentities.has(row.identity) ? (personOf.has(row.identity) ? 'member' : 'other') : 'stranger';
    const probes: Probe[] = shuffle(rows.filter((row) => !enrolledWith.has(row.path)), seed).map((row, i) => ({
      ...row,
      role: role(row),
      capturedAt: new Date(FIRST_CAPTURE + i * CAPTURE_SPACING_MINUTES * 60_000).toISOString(),
    }));
    console.log(`uploading ${probes.length} captures…`);
    const uploads = await Promise.all(
      probes.map(async (probe) => ({ name: path.basename(probe.path), bytes: await fs.readFile(path.join(dataset, probe.path)), capturedAt: probe.capturedAt })),
    );
    const started = performance.now();
    const { latencies, outcomes } = await uploadAndWait(service.api, tenant.deviceKey, uploads, Number(args['batch-size']));
    const seconds = (performance.now() - started) / 1000;
    outcomes.forEach((outcome, i) => Object.assign(probes[i], outcome));
    await forEachLimited(probes, 8, async (probe) => {
      if (probe.captureId) probe.capture = (await call(service.api, tenant.deviceKey, 'GET', `/v1/captures/${probe.captureId}`)) as unknown as Capture;
    });

    const failures = new Map<string, number>();
    for (const probe of probes) {
      const code = probe.rejected ?? (probe.capture?.status === 'failed' ? (probe.capture.error?.code ?? 'failed') : undefined);
      if (code) failures.set(code, (failures.get(code) ?? 0) + 1);
    }
    const labelled = probes.filter((p) => isLabelled(p) && p.capture?.status === 'done');
    const faceless = probes.filter((p) => p.identity === 'none' && p.capture?.status === 'done');
    const groups = probes.filter((p) => p.identity === 'group' && p.capture?.status === 'done');
    const memberProbes = probes.filter((p) => p.role === 'member' && p.capture?.status === 'done');
    const memberFaces = memberProbes.map((p) => ({ probe: p, match: largestFace(p.capture!.faces)?.match })).filter((m) => m.match !== undefined);
    const strangerProbes = probes.filter((p) => p.role === 'stranger' && p.capture?.status === 'done');
    const strangerMatches = strangerProbes.flatMap((p) => {
      const match = largestFace(p.capture!.faces)?.match;
      return match ? [{ identity: p.identity, match }] : [];
    });
    const expected = (p: Probe) => personOf.get(p.identity);

    console.log('identify: the same photos through POST /v1/identify…');
    const report = {
      dataset,
      seed,
      members: { identities: memberIdentities.size, enrolled: personOf.size, enrolRefusals: refusals },
      captures: {
        uploaded: probes.length,
        done: probes.filter((p) => p.capture?.status === 'done').length,
        notDone: Object.fromEntries(failures),
        seconds: Math.round(seconds * 10) / 10,
        imagesPerSecond: Math.round((probes.length / seconds) * 10) / 10,
        uploadP95Ms: Math.round(percentile(latencies, 95)),
      },
      detection: {
        faceRate: ratio(labelled.filter((p) => p.capture!.faces.length > 0).length, labelled.length),
        noFaceFalsePositiveRate: ratio(faceless.filter((p) => p.capture!.faces.length > 0).length, faceless.length),
        groupMeanFaces: ratio(groups.reduce((n, p) => n + p.capture!.faces.length, 0), groups.length),
      },
      recognition: {
        memberPhotos: memberFaces.length,
        memberRecognised: ratio(memberFaces.filter(({ probe, match }) => match?.kind === 'member' && match.personId === expected(probe)).length, memberFaces.length),
        memberAsOtherMember: ratio(memberFaces.filter(({ probe, match }) => match?.kind === 'member' && match.personId !== expected(probe)).length, memberFaces.length),
        memberAsVisitor: ratio(memberFaces.filter(({ match }) => match?.kind === 'visitor').length, memberFaces.length),
        strangerPhotos: strangerMatches.length,
        strangerAsMember: ratio(strangerMatches.filter(({ match }) => match.kind === 'member').length, strangerMatches.length),
      },
      visitors: visitorPairs(strangerMatches.flatMap(({ identity, match }) => (match.visitorId ? [{ identity, visitorId: match.visitorId }] : []))),
      identify: await identifyAll(service, tenant, dataset, probes, personOf),
      consistency: await consistency(service, tenant, probes, personOf),
    };

    console.table({ captures: report.captures });
    console.table({ detection: report.detection });
    console.table({ recognition: report.recognition });
    console.table({ visitors: report.visitors });
    console.table({ identify: report.identify });
    console.table(report.consistency.rows);
    if (refusals.length > 0) console.log(`enrolment refused: ${refusals.join('; ')}`);
    if (args.json) {
      await fs.writeFile(args.json, `${JSON.stringify(report, null, 2)}\n`);
      console.log(`wrote ${args.json}`);
    }
    if (!report.consistency.agree) process.exitCode = 1;
  } finally {
    await service.stop();
  }
}

main().catch((error) => {
  console.error(`eval:service failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
