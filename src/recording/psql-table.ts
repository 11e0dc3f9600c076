/**
 * Result tables the way psql prints them in its default aligned format (border 1): centered
 * headers, ` | ` between columns, numbers right-aligned, multi-line values continued with `+`, and
 * a `(N rows)` footer. Pure; used by replay to make a transcript read like the psql session did.
 */

/** Type OIDs psql right-aligns (int2/4/8, float4/8, numeric, oid, xid, xid8, cid, money). */
const NUMERIC_TYPES = new Set([20, 21, 23, 700, 701, 1700, 26, 28, 5069, 29, 790]);

export interface TableColumn {
  name: string;
  type: number;
}

/** Display width of a string: wide (East Asian) characters count 2, combining marks 0. */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x300) w += cp < 0x20 ? 0 : 1;
    else if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || cp === 0xfeff) w += 0;
    else if (isWide(cp)) w += 2;
    else w += 1;
  }
  return w;
}

function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}

const pad = (n: number) => ' '.repeat(Math.max(0, n));

/**
 * The table body (header, separator, rows) without the footer. `rows` hold display strings
 * (null = SQL NULL, shown empty as psql does by default).
 */
export function alignedTable(columns: TableColumn[], rows: Array<Array<string | null>>): string {
  if (columns.length === 0) return '--\n';
  const cells = rows.map((r) => columns.map((_, i) => (r[i] ?? '').split('\n')));
  const heads = columns.map((c) => c.name.split('\n'));
  const widths = columns.map((_, i) => Math.max(...heads[i]!.map(displayWidth), ...cells.map((r) => Math.max(...r[i]!.map(displayWidth)))));
  const right = columns.map((c) => NUMERIC_TYPES.has(c.type));
  const last = columns.length - 1;
  const out: string[] = [];

  // Headers are centered; the header line always ends with the border space.
  const headLines = Math.max(...heads.map((h) => h.length));
  for (let l = 0; l < headLines; l++) {
    let line = ' ';
    columns.forEach((_, i) => {
      const text = heads[i]![l] ?? '';
      const free = widths[i]! - displayWidth(text);
      const more = l + 1 < heads[i]!.length;
      line += pad(Math.floor(free / 2)) + text + pad(Math.ceil(free / 2)) + (more ? '+' : ' ');
      if (i < last) line += '|' + ' ';
    });
    out.push(line);
  }
  out.push(widths.map((w) => '-'.repeat(w + 2)).join('+'));

  for (const row of cells) {
    const height = Math.max(...row.map((c) => c.length));
    for (let l = 0; l < height; l++) {
      let line = ' ';
      row.forEach((cell, i) => {
        const text = cell[l] ?? '';
        const more = l + 1 < cell.length;
        const free = widths[i]! - displayWidth(text);
        if (i < last) {
          line += (right[i] ? pad(free) + text : text + pad(free)) + (more ? '+' : ' ') + '| ';
        } else if (right[i]) {
          line += pad(free) + text + (more ? '+' : '');
        } else {
          // psql pads the last column only when a continuation mark follows it.
          line += more ? text + pad(free) + '+' : text;
        }
      });
      out.push(line);
    }
  }
  return out.join('\n') + '\n';
}

export function rowsFooter(n: number): string {
  return `(${n} ${n === 1 ? 'row' : 'rows'})\n`;
}
