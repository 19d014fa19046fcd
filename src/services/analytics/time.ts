/**
 * Time-zone maths for analytics buckets, on Intl only.
 *
 * A zone's UTC offset is piecewise constant; we find its transitions once per (zone, UTC year)
 * by sampling Intl every 6 hours and bisecting to the millisecond, then do all bucket arithmetic
 * with plain numbers (fast enough to enumerate a year of hourly buckets per request).
 *
 * Bucket rules (documented in README of the analytics service):
 * - An **hour** bucket is a maximal run of instants sharing the same local wall-clock hour *and*
 *   the same UTC offset. So a fall-back day has two buckets labelled 01:00 (EDT then EST), a
 *   spring-forward day simply has no 02:00 bucket, and zones with 30/45-minute offsets
 *   (Asia/Kolkata, Asia/Kathmandu) get buckets starting at :30/:45 UTC. Where a transition
 *   happens mid-hour (Australia/Lord_Howe shifts by 30 minutes) the bucket is cut at the
 *   transition, so every bucket is a contiguous interval and buckets partition time.
 * - A **day** bucket is the run of instants sharing a local date: 23 or 25 hours on DST days;
 *   when midnight itself is skipped the day starts at the transition. (Local dates are assumed
 *   monotonic, which holds for every zone in use: fall-backs at midnight go 24:00 -> 23:00.)
 * Bucket starts are stored as UTC instants (DATETIME(3)), never as local wall times.
 */
export type Interval = 'hour' | 'day';

const HOUR = 3_600_000;
const DAY = 86_400_000;
const SAMPLE = 6 * HOUR;

type YearInfo = { transitions: number[]; offsets: number[]; startOffset: number };

export class Zone {
  readonly name: string;
  private readonly format: Intl.DateTimeFormat;
  private readonly years = new Map<number, YearInfo>();

  constructor(name: string) {
    this.name = name;
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  }

  /** Offset (local - UTC, ms) straight from Intl. */
  private intlOffset(t: number): number {
    const parts = this.format.formatToParts(new Date(t));
    const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
    const wall = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
    const base = Math.floor(t / 1000) * 1000;
    return wall - base;
  }

  private year(y: number): YearInfo {
    let info = this.years.get(y);
    if (info) return info;
    const start = Date.UTC(y, 0, 1);
    const end = Date.UTC(y + 1, 0, 1);
    const startOffset = this.intlOffset(start);
    const transitions: number[] = [];
    const offsets: number[] = [];
    let previous = start;
    let previousOffset = startOffset;
    for (let t = Math.min(start + SAMPLE, end); ; t = Math.min(t + SAMPLE, end)) {
      const offset = this.intlOffset(t);
      if (offset !== previousOffset) {
        // bisect (previous, t] for the first instant with a different offset
        let lo = previous;
        let hi = t;
        while (hi - lo > 1) {
          const mid = Math.floor((lo + hi) / 2);
          if (this.intlOffset(mid) === previousOffset) lo = mid;
          else hi = mid;
        }
        transitions.push(hi);
        offsets.push(this.intlOffset(hi));
        // resume scanning just after the transition (another could follow within the sample)
        previous = hi;
        previousOffset = offsets[offsets.length - 1];
        t = hi;
        if (t >= end) break;
        continue;
      }
      previous = t;
      if (t >= end) break;
    }
    info = { transitions, offsets, startOffset };
    this.years.set(y, info);
    return info;
  }

  // Flat, sorted transitions over a contiguous span of loaded UTC years.
  private spanFrom = Infinity;
  private spanTo = -Infinity;
  private flatTransitions: number[] = [];
  private flatOffsets: number[] = [];
  private baseOffset = 0;

  private ensure(a: number, b: number): void {
    const ya = new Date(a).getUTCFullYear() - 1;
    const yb = new Date(b).getUTCFullYear() + 1;
    if (ya >= this.spanFrom && yb <= this.spanTo) return;
    const from = Math.min(ya, this.spanFrom);
    const to = Math.max(yb, this.spanTo);
    const transitions: number[] = [];
    const offsets: number[] = [];
    for (let y = from; y <= to; y++) {
      const info = this.year(y);
      transitions.push(...info.transitions);
      offsets.push(...info.offsets);
    }
    this.baseOffset = this.year(from).startOffset;
    this.flatTransitions = transitions;
    this.flatOffsets = offsets;
    this.spanFrom = from;
    this.spanTo = to;
  }

  /** Index of the last transition <= t, or -1. */
  private indexAt(t: number): number {
    const list = this.flatTransitions;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid] <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** UTC offset in ms at instant t. */
  offset(t: number): number {
    this.ensure(t, t);
    const i = this.indexAt(t);
    return i < 0 ? this.baseOffset : this.flatOffsets[i];
  }

  /** Transitions in (a, b], ascending. */
  transitionsIn(a: number, b: number): number[] {
    if (b <= a) return [];
    this.ensure(a, b);
    const first = this.indexAt(a) + 1;
    const last = this.indexAt(b);
    return last >= first ? this.flatTransitions.slice(first, last + 1) : [];
  }

  /** Local wall-clock time of t, as a UTC-based millisecond number. */
  wall(t: number): number {
    return t + this.offset(t);
  }

  bucketStart(t: number, interval: Interval): number {
    return interval === 'hour' ? this.hourStart(t) : this.dayStart(t);
  }

  nextBucket(start: number, interval: Interval): number {
    return interval === 'hour' ? this.nextHour(start) : this.nextDay(start);
  }

  hourStart(t: number): number {
    const o = this.offset(t);
    const candidate = Math.floor((t + o) / HOUR) * HOUR - o;
    const tr = this.transitionsIn(candidate, t);
    return tr.length > 0 ? tr[tr.length - 1] : candidate;
  }

  nextHour(s: number): number {
    const o = this.offset(s);
    const candidate = (Math.floor((s + o) / HOUR) + 1) * HOUR - o;
    const tr = this.transitionsIn(s, candidate - 1);
    return tr.length > 0 ? tr[0] : candidate;
  }

  dayStart(t: number): number {
    let o = this.offset(t);
    const midnight = Math.floor((t + o) / DAY) * DAY;
    let upper = t;
    for (;;) {
      const candidate = midnight - o;
      const tr = this.transitionsIn(candidate, upper);
      if (tr.length === 0) return candidate;
      const boundary = tr[tr.length - 1];
      const before = this.offset(boundary - 1);
      // Before the transition the wall clock had not reached this date: the day starts at it.
      if (boundary - 1 + before < midnight) return boundary;
      o = before;
      upper = boundary - 1;
    }
  }

  nextDay(s: number): number {
    let o = this.offset(s);
    const nextMidnight = (Math.floor((s + o) / DAY) + 1) * DAY;
    let lower = s;
    for (;;) {
      const candidate = nextMidnight - o;
      const tr = this.transitionsIn(lower, candidate);
      if (tr.length === 0) return candidate;
      const boundary = tr[0];
      const after = this.offset(boundary);
      if (boundary + after >= nextMidnight) return boundary;
      o = after;
      lower = boundary;
    }
  }

  /** Every bucket start s with bucketStart(from) <= s < to. */
  buckets(from: number, to: number, interval: Interval): number[] {
    return this.series(from, to, interval).starts;
  }

  private readonly seriesCache = new Map<string, { starts: number[]; labels: string[] }>();

  /** Bucket starts and their local ISO labels, memoised (a dashboard asks for the same ranges again and again). */
  series(from: number, to: number, interval: Interval): { starts: number[]; labels: string[] } {
    const first = this.bucketStart(from, interval);
    const key = `${interval}|${first}|${to}`;
    const hit = this.seriesCache.get(key);
    if (hit) {
      this.seriesCache.delete(key);
      this.seriesCache.set(key, hit);
      return hit;
    }
    const starts: number[] = [];
    for (let s = first; s < to; s = this.nextBucket(s, interval)) starts.push(s);
    const labels = starts.map((s) => this.isoLocal(s));
    const value = { starts, labels };
    this.seriesCache.set(key, value);
    if (this.seriesCache.size > 64) this.seriesCache.delete(this.seriesCache.keys().next().value as string);
    return value;
  }

  /** ISO-8601 with the local offset, e.g. 2026-03-08T03:00:00.000-04:00. */
  isoLocal(t: number): string {
    const o = this.offset(t);
    const wall = new Date(t + o).toISOString().slice(0, 23);
    const sign = o < 0 ? '-' : '+';
    const abs = Math.abs(Math.round(o / 60000));
    const hh = String(Math.floor(abs / 60)).padStart(2, '0');
    const mm = String(abs % 60).padStart(2, '0');
    return `${wall}${sign}${hh}:${mm}`;
  }

  /** Local calendar fields of t: weekday 0 = Monday … 6 = Sunday. */
  local(t: number): { date: string; hour: number; weekday: number } {
    const w = new Date(this.wall(t));
    return { date: w.toISOString().slice(0, 10), hour: w.getUTCHours(), weekday: (w.getUTCDay() + 6) % 7 };
  }
}

const zones = new Map<string, Zone>();

export function zone(name: string): Zone {
  let z = zones.get(name);
  if (!z) {
    z = new Zone(name);
    zones.set(name, z);
  }
  return z;
}

export function isValidTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
