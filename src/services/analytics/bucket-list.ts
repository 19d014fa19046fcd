/**
 * The bucket list of a series answer (traffic, demographics, visitors): one bucket per start of
 * the range, each read from its rollup row (or zeros when it has none).
 *
 * A year of hours is 8,760 buckets and 1.3–1.6 MB of JSON. Rather than build an object per
 * bucket for JSON.stringify (about 6 ms for a year of hourly demographics here), the list keeps
 * the rows and writes the text straight from them, each series' labels quoted once (about 4 ms).
 * That text is byte for byte JSON.stringify of the bucket objects, which `objects()` still
 * builds for CSV and `toJSON` for JSON.stringify (tests compare the two).
 */

/** How a bucket reads from its row (undefined: no row, no visits). */
export type BucketShape<R, B> = {
  /** The bucket object, `start` first. */
  object(start: string, row: R | undefined): B;
  /** The JSON text of that object after its `start` member, e.g. `,"visits":3,…}`. */
  jsonAfterStart(row: R | undefined): string;
};

export class BucketList<R, B> {
  constructor(
    private readonly labels: string[],
    private readonly rows: (R | undefined)[],
    private readonly shape: BucketShape<R, B>,
  ) {}

  objects(): B[] {
    return this.labels.map((label, i) => this.shape.object(label, this.rows[i]));
  }

  toJSON(): B[] {
    return this.objects();
  }

  /**
   * Appends the text of JSON.stringify(this.objects()) to `out`, written without them and in
   * pieces, for one join of the whole answer (every join or concatenation copies it all).
   */
  appendJson(out: string[]): void {
    const quoted = quotedLabels(this.labels);
    const empty = this.shape.jsonAfterStart(undefined);
    out.push('[');
    for (let i = 0; i < quoted.length; i++) {
      const row = this.rows[i];
      out.push(`${i === 0 ? '' : ','}{"start":${quoted[i]}${row === undefined ? empty : this.shape.jsonAfterStart(row)}`);
    }
    out.push(']');
  }
}

/** A number's JSON text (JSON.stringify writes NaN and infinities as null). */
export const jsonNumber = (n: number): string => (Number.isFinite(n) ? `${n}` : 'null');

// Series labels are memoised per zone and range (time.ts), so their quoted forms can be too.
const quotedByLabels = new WeakMap<string[], string[]>();

function quotedLabels(labels: string[]): string[] {
  let quoted = quotedByLabels.get(labels);
  if (!quoted) {
    quoted = labels.map((label) => JSON.stringify(label));
    quotedByLabels.set(labels, quoted);
  }
  return quoted;
}

/**
 * JSON.stringify(answer) for an answer object whose members may be bucket lists: the members in
 * the same order, bucket lists written by `json()`, anything else by JSON.stringify (members it
 * would leave out, such as undefined, are left out).
 */
export function answerJson(answer: object): string {
  const out = ['{'];
  for (const [key, value] of Object.entries(answer)) {
    const comma = out.length === 1 ? '' : ',';
    if (value instanceof BucketList) {
      out.push(`${comma}${JSON.stringify(key)}:`);
      value.appendJson(out);
      continue;
    }
    const text: string | undefined = JSON.stringify(value);
    if (text !== undefined) out.push(`${comma}${JSON.stringify(key)}:${text}`);
  }
  out.push('}');
  return out.join('');
}
