/**
 * The MySQL flavour of a replay transcript: what the mysql/mariadb command-line client prints in
 * its interactive table mode — `mysql [connection]>` prompts, `+---+` bordered tables with numbers
 * right-aligned, `N rows in set` / `Empty set`, `Query OK, N rows affected`, and
 * `ERROR 1146 (42S02): ...` lines (timings are left out). Pure; used by ./transcript.ts.
 */
import type { CompleteData, MessageData } from './events.js';
import { displayWidth, type TableColumn } from './psql-table.js';

/** MySQL field types the client right-aligns (integers, floats, decimals, year). */
const NUMERIC = new Set([0, 1, 2, 3, 4, 5, 8, 9, 13, 246]);

export function mysqlPrompt(connection: string): string {
  return `mysql [${connection}]> `;
}

export const MYSQL_CONTINUATION = '    -> ';

export function mysqlTable(columns: TableColumn[], rows: Array<Array<string | null>>): string {
  const cells = rows.map((r) => columns.map((_, i) => (r[i] === null || r[i] === undefined ? 'NULL' : String(r[i]).replace(/\n/g, '\\n'))));
  const widths = columns.map((c, i) => Math.max(displayWidth(c.name), ...cells.map((r) => displayWidth(r[i]!))));
  const line = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+\n';
  const pad = (s: string, w: number, right: boolean) => (right ? ' '.repeat(w - displayWidth(s)) + s : s + ' '.repeat(w - displayWidth(s)));
  const header = '| ' + columns.map((c, i) => pad(c.name, widths[i]!, false)).join(' | ') + ' |\n';
  const body = cells
    .map((r) => '| ' + r.map((v, i) => pad(v, widths[i]!, NUMERIC.has(columns[i]!.type) && v !== 'NULL')).join(' | ') + ' |\n')
    .join('');
  return line + header + line + (rows.length ? body + line : '');
}

/** The lines after a result (or an OK) as the client prints them. */
export function mysqlComplete(c: CompleteData, table: { columns: TableColumn[]; rows: Array<Array<string | null>> } | null): string {
  const [word, count] = c.tag.split(' ');
  if (word === 'ROWS') {
    const n = c.rows ?? Number(count);
    let out = table && n > 0 ? mysqlTable(table.columns, table.rows) : '';
    if (c.truncated) {
      const more = n - c.truncated.recorded;
      out += `-- jitgate: ${more} more row${more === 1 ? '' : 's'} not recorded (limit per ${c.truncated.cap})\n`;
    }
    return out + (n === 0 ? 'Empty set\n\n' : `${n} row${n === 1 ? '' : 's'} in set\n\n`);
  }
  if (word === 'OK') {
    const n = Number(count) || 0;
    return `Query OK, ${n} row${n === 1 ? '' : 's'} affected\n\n`;
  }
  return `-- ${c.tag}\n`;
}

export function mysqlMessage(m: MessageData): string {
  if (m.severity.startsWith('ERROR')) return `${m.severity} (${m.code}): ${m.message}\n`;
  return `-- ${m.severity}: ${m.message}\n`;
}
