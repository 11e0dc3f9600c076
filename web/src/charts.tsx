/**
 * Horizontal bar charts (recharts) readable without colour: every series has its own fill pattern
 * (solid, hatched, dotted) and outline, every bar carries its value as a label, the legend shows
 * the patterns, and the same figures are one click away as a table. Screen readers get the chart
 * as one image with a sentence of its figures, and the table.
 */
import { useId, type ReactNode } from 'react';
import { Bar, BarChart, CartesianGrid, LabelList, Legend, ResponsiveContainer, XAxis, YAxis } from 'recharts';
import { Empty } from './format';

export type Pattern = 'solid' | 'hatch' | 'dots';

export interface Series {
  key: string;
  label: string;
  pattern: Pattern;
}

export type Row = Record<string, string | number>;

interface BarsProps {
  title: string;
  /** One sentence under the title: what is counted, over which time. */
  description?: ReactNode;
  rows: Row[];
  /** The key of each row's name (a connection, a rule, a bucket). */
  category: string;
  categoryLabel: string;
  series: Series[];
  empty: string;
  testId?: string;
}

const COLOURS = ['#2456c7', '#0f7a5c', '#8a4b08'];
const ROW_HEIGHT = 26;

export function Bars({ title, description, rows, category, categoryLabel, series, empty, testId }: BarsProps) {
  const id = useId().replace(/:/g, '');
  const summary = `${title}: ${rows
    .map((r) => `${String(r[category])} ${series.map((s) => `${Number(r[s.key] ?? 0)} ${s.label.toLowerCase()}`).join(', ')}`)
    .join('; ')}`;
  const height = rows.length * (series.length * ROW_HEIGHT + 14) + (series.length > 1 ? 64 : 36);
  const longest = Math.max(...rows.map((r) => String(r[category]).length), 4);
  return (
    <figure className="chart" aria-labelledby={`${id}-title`} data-testid={testId}>
      <figcaption>
        <h3 id={`${id}-title`}>{title}</h3>
        {description && <p className="muted small">{description}</p>}
      </figcaption>
      {rows.length === 0 ? (
        <Empty>{empty}</Empty>
      ) : (
        <>
          <div className="chart-plot" role="img" aria-label={summary} style={{ height }}>
            <ResponsiveContainer width="100%" height="100%">
              <BarChart
                data={rows}
                layout="vertical"
                margin={{ top: 4, right: 48, bottom: 4, left: 4 }}
                barGap={2}
                accessibilityLayer={false}
              >
                <defs>
                  {series.map((s, i) => (
                    <PatternDef key={s.key} id={`${id}-${s.key}`} pattern={s.pattern} colour={COLOURS[i % COLOURS.length]!} />
                  ))}
                </defs>
                <CartesianGrid horizontal={false} strokeDasharray="3 3" />
                <XAxis type="number" allowDecimals={false} tick={{ fontSize: 12 }} />
                <YAxis type="category" dataKey={category} width={Math.min(180, 16 + longest * 7.5)} tick={{ fontSize: 12 }} interval={0} />
                {series.length > 1 && <Legend verticalAlign="top" height={28} />}
                {series.map((s, i) => (
                  <Bar
                    key={s.key}
                    dataKey={s.key}
                    name={s.label}
                    fill={`url(#${id}-${s.key})`}
                    stroke={COLOURS[i % COLOURS.length]}
                    strokeWidth={1.5}
                    barSize={ROW_HEIGHT - 8}
                    isAnimationActive={false}
                  >
                    <LabelList dataKey={s.key} position="right" fontSize={12} fill="#1f2937" />
                  </Bar>
                ))}
              </BarChart>
            </ResponsiveContainer>
          </div>
          <details className="chart-table">
            <summary>Show as a table</summary>
            <div className="scroll">
              <table>
                <caption className="sr-only">{title}</caption>
                <thead>
                  <tr>
                    <th scope="col">{categoryLabel}</th>
                    {series.map((s) => (
                      <th key={s.key} scope="col">
                        {s.label}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {rows.map((r) => (
                    <tr key={String(r[category])}>
                      <th scope="row">{String(r[category])}</th>
                      {series.map((s) => (
                        <td key={s.key}>{Number(r[s.key] ?? 0)}</td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </details>
        </>
      )}
    </figure>
  );
}

/** A fill that tells series apart in grey scale and for colour-blind readers. */
function PatternDef({ id, pattern, colour }: { id: string; pattern: Pattern; colour: string }) {
  if (pattern === 'solid') {
    return (
      <pattern id={id} width="4" height="4" patternUnits="userSpaceOnUse">
        <rect width="4" height="4" fill={colour} />
      </pattern>
    );
  }
  if (pattern === 'hatch') {
    return (
      <pattern id={id} width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
        <rect width="6" height="6" fill="#fff" />
        <line x1="0" y1="0" x2="0" y2="6" stroke={colour} strokeWidth="3" />
      </pattern>
    );
  }
  return (
    <pattern id={id} width="5" height="5" patternUnits="userSpaceOnUse">
      <rect width="5" height="5" fill="#fff" />
      <circle cx="2.5" cy="2.5" r="1.4" fill={colour} />
    </pattern>
  );
}
