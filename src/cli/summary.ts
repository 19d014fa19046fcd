/** The end-of-run summary (text or JSON) and the exit code it implies. */
import type { FollowResult } from './follow.js';
import type { FileResult, UploadRun } from './uploader.js';

export type Summary = {
  files: number;
  /** Distinct contents among the files. */
  distinct: number;
  uploaded: number;
  /** Not sent: the lookup found them, or the server answered an upload with an existing capture. */
  alreadyOnServer: number;
  sameContent: number;
  rejected: number;
  unsent: number;
  unreadable: number;
  done: number;
  failed: number;
  /** Accepted but not finished (no --wait, or --wait timed out). */
  inProgress: number;
  /** Problem files grouped by error code: rejected, failed, unsent, unreadable. */
  problems: Record<string, { count: number; message: string; files: string[] }>;
  faces: number | null;
  memberFaces: number | null;
  members: number | null;
  visitorFaces: number | null;
  batches: string[];
  requests: UploadRun['requests'];
  waited: boolean;
  timedOut: boolean;
};

const EXAMPLES = 5;

export function summarize(run: UploadRun, follow?: FollowResult): Summary {
  const results = run.results;
  const count = (f: (r: FileResult) => boolean) => results.filter(f).length;
  const captureIds = new Set(results.filter((r) => r.captureId).map((r) => r.captureId!));
  const problems: Summary['problems'] = {};
  for (const r of results) {
    const bad = r.outcome === 'rejected' || r.outcome === 'unsent' || r.outcome === 'unreadable' || r.status === 'failed';
    if (!bad) continue;
    const code = r.error?.code ?? (r.outcome === 'unsent' ? 'unsent' : 'failed');
    const entry = (problems[code] ??= { count: 0, message: r.error?.message ?? '', files: [] });
    entry.count++;
    if (entry.files.length < EXAMPLES) entry.files.push(r.file.display);
  }
  let faces: number | null = null;
  let memberFaces: number | null = null;
  let visitorFaces: number | null = null;
  let members: number | null = null;
  if (follow) {
    faces = memberFaces = visitorFaces = 0;
    const people = new Set<string>();
    for (const id of captureIds) {
      for (const face of follow.details.get(id)?.faces ?? []) {
        faces++;
        if (face.match?.kind === 'member') {
          memberFaces++;
          if (face.match.personId) people.add(face.match.personId);
        } else if (face.match?.kind === 'visitor') visitorFaces++;
      }
    }
    members = people.size;
  }
  const statusOf = new Map(results.filter((r) => r.captureId).map((r) => [r.captureId!, r.status]));
  const statuses = [...statusOf.values()];
  return {
    files: results.length,
    distinct: new Set(results.filter((r) => r.sha256).map((r) => r.sha256)).size,
    uploaded: count((r) => r.outcome === 'sent' && !r.duplicate),
    alreadyOnServer: count((r) => r.outcome === 'known' || (r.outcome === 'sent' && r.duplicate === true)),
    sameContent: count((r) => r.outcome === 'same-content'),
    rejected: count((r) => r.outcome === 'rejected'),
    unsent: count((r) => r.outcome === 'unsent'),
    unreadable: count((r) => r.outcome === 'unreadable'),
    done: statuses.filter((s) => s === 'done').length,
    failed: statuses.filter((s) => s === 'failed').length,
    inProgress: statuses.filter((s) => s !== 'done' && s !== 'failed').length,
    problems,
    faces,
    memberFaces,
    members,
    visitorFaces,
    batches: run.batchIds,
    requests: run.requests,
    waited: Boolean(follow),
    timedOut: follow?.timedOut ?? false,
  };
}

/** 0 when every file is on the server and (with --wait) processed without failure; 1 otherwise. */
export function exitCodeOf(summary: Summary): number {
  const bad = summary.rejected + summary.unsent + summary.unreadable + summary.failed + (summary.waited ? summary.inProgress : 0);
  return bad > 0 ? 1 : 0;
}

export function formatSummary(s: Summary): string {
  const lines: string[] = [];
  lines.push(
    `files: ${s.files} (uploaded ${s.uploaded}, already on server ${s.alreadyOnServer}` +
      (s.sameContent ? `, same bytes as another file ${s.sameContent}` : '') +
      `, rejected ${s.rejected}` +
      (s.unsent ? `, not sent ${s.unsent}` : '') +
      (s.unreadable ? `, unreadable ${s.unreadable}` : '') +
      ')',
  );
  lines.push(`captures: ${s.done + s.failed + s.inProgress} (done ${s.done}, failed ${s.failed}, in progress ${s.inProgress})${s.timedOut ? ' — stopped waiting (--wait-timeout)' : ''}`);
  if (s.faces !== null) lines.push(`faces found: ${s.faces} (members recognised: ${s.memberFaces} faces, ${s.members} distinct; visitors: ${s.visitorFaces})`);
  const codes = Object.entries(s.problems).sort((a, b) => b[1].count - a[1].count);
  if (codes.length) {
    lines.push('problems:');
    for (const [code, p] of codes) {
      lines.push(`  ${code}: ${p.count}${p.message ? ` — ${p.message}` : ''}`);
      for (const f of p.files) lines.push(`    ${f}`);
      if (p.count > p.files.length) lines.push(`    … and ${p.count - p.files.length} more`);
    }
  }
  if (s.unsent) lines.push('some files were not sent: run the same command again to resume (files already on the server are skipped)');
  if (!s.waited && s.inProgress) lines.push('processing continues on the server; add --wait to follow it to the end');
  return lines.join('\n');
}
