/** Wall-clock times without a zone (EXIF) read in a store's IANA time zone. */

function zoneOffsetMs(instant: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(new Date(instant));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return asUtc - Math.floor(instant / 1000) * 1000;
}

/**
 * The instant at which clocks in `timeZone` showed `local` ("2026-11-27T10:15:00", no zone).
 * In a DST gap or overlap the earlier offset wins. Undefined for an unparseable value.
 */
export function localTimeToInstant(local: string, timeZone: string): Date | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?$/.exec(local);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s, frac] = match;
  const wall = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s, frac ? Math.round(Number(frac) * 1000) : 0);
  if (Number.isNaN(wall)) return undefined;
  let guess = wall - zoneOffsetMs(wall, timeZone);
  guess = wall - zoneOffsetMs(guess, timeZone);
  return new Date(guess);
}

/** Earliest capture time accepted from a device or EXIF; unset camera clocks say 1970 or 2000. */
export const EARLIEST_CAPTURE = Date.UTC(2001, 0, 1);
/** Device clocks may run a little fast; more than this ahead of receipt is refused. */
export const MAX_CLOCK_SKEW_MS = 24 * 3600 * 1000;

export function plausibleCaptureTime(at: Date, receivedAt: Date): boolean {
  const t = at.getTime();
  return Number.isFinite(t) && t >= EARLIEST_CAPTURE && t <= receivedAt.getTime() + MAX_CLOCK_SKEW_MS;
}
