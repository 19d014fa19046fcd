import { describe, expect, it } from 'vitest';
import { zone } from '../../src/services/analytics/time.js';

const iso = (t: number) => new Date(t).toISOString();
const H = 3_600_000;

describe('time-zone buckets', () => {
  const ny = zone('America/New_York');

  it('spring forward: 23 hour buckets, no 02:00, day is 23 h', () => {
    const dayStart = ny.dayStart(Date.parse('2026-03-08T12:00:00Z'));
    expect(iso(dayStart)).toBe('2026-03-08T05:00:00.000Z');
    const next = ny.nextDay(dayStart);
    expect(iso(next)).toBe('2026-03-09T04:00:00.000Z');
    const hours = ny.buckets(dayStart, next, 'hour');
    expect(hours).toHaveLength(23);
    expect(hours.map((h) => ny.isoLocal(h)).slice(0, 4)).toEqual([
      '2026-03-08T00:00:00.000-05:00',
      '2026-03-08T01:00:00.000-05:00',
      '2026-03-08T03:00:00.000-04:00',
      '2026-03-08T04:00:00.000-04:00',
    ]);
    expect(iso(ny.hourStart(Date.parse('2026-03-08T07:30:00Z')))).toBe('2026-03-08T07:00:00.000Z'); // 03:30 EDT
    expect(iso(ny.hourStart(Date.parse('2026-03-08T06:59:59.999Z')))).toBe('2026-03-08T06:00:00.000Z'); // 01:59 EST
  });

  it('fall back: 25 hour buckets, 01:00 twice (EDT then EST), day is 25 h', () => {
    const dayStart = ny.dayStart(Date.parse('2026-11-01T15:00:00Z'));
    expect(iso(dayStart)).toBe('2026-11-01T04:00:00.000Z');
    const next = ny.nextDay(dayStart);
    expect(next - dayStart).toBe(25 * H);
    const hours = ny.buckets(dayStart, next, 'hour');
    expect(hours).toHaveLength(25);
    expect(hours.slice(0, 4).map((h) => ny.isoLocal(h))).toEqual([
      '2026-11-01T00:00:00.000-04:00',
      '2026-11-01T01:00:00.000-04:00',
      '2026-11-01T01:00:00.000-05:00',
      '2026-11-01T02:00:00.000-05:00',
    ]);
    expect(iso(ny.hourStart(Date.parse('2026-11-01T05:59:00Z')))).toBe('2026-11-01T05:00:00.000Z');
    expect(iso(ny.hourStart(Date.parse('2026-11-01T06:10:00Z')))).toBe('2026-11-01T06:00:00.000Z');
  });

  it('half-hour and 45-minute offsets bucket on local hours', () => {
    const kolkata = zone('Asia/Kolkata');
    expect(iso(kolkata.hourStart(Date.parse('2026-05-01T10:10:00Z')))).toBe('2026-05-01T09:30:00.000Z');
    expect(iso(kolkata.dayStart(Date.parse('2026-05-01T10:10:00Z')))).toBe('2026-04-30T18:30:00.000Z');
    const kathmandu = zone('Asia/Kathmandu');
    expect(iso(kathmandu.hourStart(Date.parse('2026-05-01T10:10:00Z')))).toBe('2026-05-01T09:15:00.000Z');
  });

  it('a 30-minute DST shift cuts the hour at the transition (Australia/Lord_Howe)', () => {
    const lh = zone('Australia/Lord_Howe');
    // 2026-10-04 02:00 +10:30 -> 02:30 +11:00, i.e. at 2026-10-03T15:30Z
    const t = Date.parse('2026-10-03T15:40:00Z');
    expect(iso(lh.hourStart(t))).toBe('2026-10-03T15:30:00.000Z');
    expect(iso(lh.nextHour(Date.parse('2026-10-03T15:00:00Z')))).toBe('2026-10-03T15:30:00.000Z');
    const day = lh.dayStart(t);
    expect(lh.nextDay(day) - day).toBe(23.5 * H);
  });

  it('buckets partition time over a whole year in several zones', () => {
    for (const name of ['America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'America/Santiago', 'UTC']) {
      const z = zone(name);
      for (const interval of ['hour', 'day'] as const) {
        const from = Date.parse('2026-01-01T00:00:00Z');
        const list = z.buckets(from, Date.parse('2027-01-01T00:00:00Z'), interval);
        for (let i = 1; i < list.length; i++) {
          expect(list[i]).toBeGreaterThan(list[i - 1]);
          expect(z.bucketStart(list[i] - 1, interval)).toBe(list[i - 1]);
          expect(z.bucketStart(list[i], interval)).toBe(list[i]);
        }
        if (interval === 'day') expect(list.length).toBeGreaterThanOrEqual(365);
      }
    }
  });

  it('weekday and hour are local (0 = Monday)', () => {
    expect(ny.local(Date.parse('2026-03-09T03:30:00Z'))).toEqual({ date: '2026-03-08', hour: 23, weekday: 6 });
  });
});
