/**
 * Progress on stderr: a redrawn bar on a terminal (files, bytes, rate, ETA), plain lines every few
 * seconds otherwise (logs, CI, robots' journald), or nothing with --quiet.
 */
export type ProgressState = {
  phase: string;
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** Extra counters shown after the numbers, e.g. skipped 3, rejected 1. */
  notes: Record<string, number>;
};

export type ProgressMode = 'tty' | 'plain' | 'none';

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (x: number) => String(x).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

export class Progress {
  readonly state: ProgressState = { phase: '', filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0, notes: {} };
  private timer: NodeJS.Timeout | undefined;
  /** Samples of (time, bytesDone) over the last few seconds, for the rate. */
  private samples: { t: number; bytes: number }[] = [];
  private drawn = false;
  private phaseStarted = Date.now();

  constructor(
    readonly mode: ProgressMode,
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly plainIntervalMs = 5000,
  ) {}

  start(phase: string, filesTotal: number, bytesTotal: number): void {
    this.stopTimer();
    if (this.state.phase) this.render(true);
    Object.assign(this.state, { phase, filesDone: 0, filesTotal, bytesDone: 0, bytesTotal });
    this.samples = [];
    this.phaseStarted = Date.now();
    if (this.mode === 'none') return;
    if (this.mode === 'plain') this.line(`${phase}: ${filesTotal} files, ${formatBytes(bytesTotal)}`);
    this.timer = setInterval(() => this.render(false), this.mode === 'tty' ? 150 : this.plainIntervalMs);
    this.timer.unref();
  }

  files(n: number): void {
    this.state.filesDone += n;
  }

  bytes(n: number): void {
    this.state.bytesDone += n;
  }

  note(name: string, n = 1): void {
    this.state.notes[name] = (this.state.notes[name] ?? 0) + n;
  }

  /** A message that must not be garbled by the bar (warnings, retries). */
  log(message: string): void {
    if (this.mode === 'none') return;
    if (this.mode === 'tty' && this.drawn) this.out.write('\r\x1b[2K');
    this.out.write(`${message}\n`);
    if (this.mode === 'tty' && this.drawn) this.render(false);
  }

  /** Final line of the phase. */
  finish(): void {
    this.stopTimer();
    if (this.state.phase) this.render(true);
    this.state.phase = '';
  }

  rate(): number {
    const now = Date.now();
    this.samples.push({ t: now, bytes: this.state.bytesDone });
    while (this.samples.length > 2 && now - this.samples[0].t > 10_000) this.samples.shift();
    const first = this.samples[0];
    const seconds = (now - first.t) / 1000;
    if (seconds < 0.5) {
      const elapsed = (now - this.phaseStarted) / 1000;
      return elapsed > 0 ? this.state.bytesDone / elapsed : 0;
    }
    return Math.max(0, (this.state.bytesDone - first.bytes) / seconds);
  }

  describe(): string {
    const s = this.state;
    const rate = this.rate();
    const eta = rate > 0 ? (s.bytesTotal - s.bytesDone) / rate : Number.POSITIVE_INFINITY;
    const notes = Object.entries(s.notes)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    return (
      `${s.filesDone}/${s.filesTotal} files, ${formatBytes(Math.min(s.bytesDone, s.bytesTotal))}/${formatBytes(s.bytesTotal)}, ${formatBytes(rate)}/s, ETA ${formatDuration(eta)}` +
      (notes ? ` (${notes})` : '')
    );
  }

  private render(final: boolean): void {
    if (this.mode === 'none' || !this.state.phase) return;
    const s = this.state;
    if (this.mode === 'plain') {
      this.line(`${s.phase}: ${this.describe()}${final ? ' — finished' : ''}`);
      return;
    }
    const columns = this.out.columns || 120;
    const width = columns < 100 ? 12 : 24;
    const fraction = s.bytesTotal > 0 ? Math.min(1, s.bytesDone / s.bytesTotal) : s.filesTotal > 0 ? s.filesDone / s.filesTotal : 1;
    const filled = Math.round(fraction * width);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}%`;
    let text = `${s.phase} ${bar} ${this.describe()}`;
    if (text.length > columns - 1) text = text.slice(0, columns - 1);
    this.out.write(`\r\x1b[2K${text}${final ? '\n' : ''}`);
    this.drawn = !final;
  }

  private line(text: string): void {
    this.out.write(`${new Date().toISOString()} ${text}\n`);
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
