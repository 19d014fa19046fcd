/**
 * The bucket list of a series answer (traffic, demographics, visitors): one bucket per start of
 * the range, each read from its rollup row (or zeros when it has none).
 *
 * A year of hours is 8,760 buckets and 1.3–1.6 MB of JSON. Building an object per bucket and
 * handing them to JSON.stringify was a third of such a request's CPU, so the list keeps the rows
 * and writes its JSON text straight from them, with each series' labels quoted once. That text
 * is byte for byte JSON.stringify of the bucket objects, which `objects()` still builds for CSV
 * and `toJSON` for JSON.stringify (tests compare the two).
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

  /** JSON.stringify(this.objects()), written without them. */
  json(): string {
    const quoted = quotedLabels(this.labels);
    const empty = this.shape.jsonAfterStart(undefined);
    const parts = new Array<string>(quoted.length);
    for (let i = 0; i < quoted.length; i++) {
      const row = this.rows[i];
      parts[i] = `{"start":${quoted[i]}${row === undefined ? empty : this.shape.jsonAfterStart(row)}`;
    }
    return `[${parts.join(',')}]`;
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
  const members: string[] = [];
  for (const [key, value] of Object.entries(answer)) {
    const text: string | undefined = value instanceof BucketList ? value.json() : JSON.stringify(value);
    if (text !== undefined) members.push(`${JSON.stringify(key)}:${text}`);
  }
  return `{${members.join(',')}}`;
}
