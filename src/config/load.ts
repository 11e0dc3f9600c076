/**
 * Reading `jitgate.yaml`: YAML with node positions kept, validated by ./schema.ts, every problem
 * reported at once as `FILE:LINE:COL: path.inside.file: what is wrong`.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { allowedKeysAt, buildConfig, configSchema, crossCheck, type ConfigPath, type SchemaProblem } from './schema.js';
import { describeValue } from './leaf.js';
import type { GatewayConfig } from './types.js';

export interface ConfigProblem {
  file: string;
  /** 1-based; 0 when the problem has no position (e.g. the file cannot be read). */
  line: number;
  col: number;
  /** Path inside the file, e.g. `connections[1].port`; '' for the file as a whole. */
  path: string;
  message: string;
}

/** The config is unusable. `message` holds one line per problem. */
export class ConfigError extends Error {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.col}` : p.file;
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}

export interface LoadOptions {
  /** Overrides `dataDir` from the file (e.g. `jitgate serve --data-dir`). */
  dataDir?: string;
  /** How messages and `config.source` name the file (default: `path` as given). */
  sourceName?: string;
}

/** Read, validate and default a config file. Throws ConfigError. */
export async function loadConfig(path: string, options: LoadOptions = {}): Promise<GatewayConfig> {
  const name = options.sourceName ?? path;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : String(code ?? err);
    throw new ConfigError([{ file: name, line: 0, col: 0, path: '', message: `cannot read the config file: ${why}` }]);
  }
  return parseConfig(text, name, dirname(resolve(path)), options);
}

/**
 * Validate config text. `sourceName` names the file in messages and becomes `config.source`;
 * relative paths inside are resolved against `baseDir`.
 */
export function parseConfig(text: string, sourceName: string, baseDir: string, options: LoadOptions = {}): GatewayConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, col };
  };

  const syntax = [...doc.errors, ...doc.warnings];
  if (syntax.length > 0) {
    throw new ConfigError(syntax.map((e) => ({ file: sourceName, ...at(e.pos[0]), path: '', message: `YAML: ${firstLine(e.message)}` })));
  }

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError([{ file: sourceName, line: 1, col: 1, path: '', message: `YAML: ${firstLine(String((err as Error).message))}` }]);
  }
  raw = dropEmpty(raw ?? {});

  const problems: Array<ConfigProblem & { offset: number }> = [];
  const add = (p: SchemaProblem) => {
    const offset = offsetOf(doc, p.path, p.atKey ?? false);
    let message = p.message;
    if (p.related) message += ` (first defined at line ${at(offsetOf(doc, p.related, false)).line})`;
    problems.push({ file: sourceName, ...at(offset), offset, path: formatPath(p.path), message });
  };

  const parsed = configSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) for (const issue of parsed.error.issues) for (const p of fromZodIssue(issue)) add(p);
  for (const p of crossCheck(raw)) add(p);

  if (problems.length > 0 || !parsed.success) {
    problems.sort((a, b) => a.offset - b.offset || a.path.localeCompare(b.path));
    const unique = new Map<string, ConfigProblem>();
    for (const { offset: _offset, ...p } of problems) unique.set(formatProblem(p), p);
    throw new ConfigError([...unique.values()]);
  }
  return buildConfig(parsed.data, { source: sourceName, baseDir, dataDir: options.dataDir });
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

/** `key:` with nothing after it means "absent"; lists keep their items as written. */
function dropEmpty(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropEmpty);
  if (typeof v === 'object' && v !== null && !Buffer.isBuffer(v) && !(v instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) out[k] = dropEmpty(x);
    return out;
  }
  return v;
}

function fromZodIssue(issue: z.core.$ZodIssue): SchemaProblem[] {
  const path = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const allowed = allowedKeysAt(path) ?? [];
        const hint = suggest(key, allowed);
        return {
          path: [...path, key],
          atKey: true,
          message:
            `unknown key ${JSON.stringify(key)}${hint ? `; did you mean ${JSON.stringify(hint)}?` : ''}` +
            (allowed.length ? ` (allowed here: ${allowed.join(', ')})` : ''),
        };
      });
    case 'invalid_type': {
      const what = issue.expected === 'object' ? 'a mapping' : issue.expected === 'array' ? 'a list' : issue.expected;
      const got = 'input' in issue ? describeValue(issue.input) : 'something else';
      return [{ path, message: issue.input === undefined ? `required: expected ${what}` : `expected ${what}, got ${got}` }];
    }
    default:
      return [{ path, message: issue.message }];
  }
}

function suggest(key: string, allowed: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const a of allowed) {
    const d = editDistance(key.toLowerCase(), a.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = a;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * Where a path points in the source: the value's node (or the key, for unknown keys and empty values).
 * When the path does not exist (a missing key), the nearest enclosing node that does.
 */
function offsetOf(doc: Document, path: ConfigPath, atKey: boolean): number {
  let node: unknown = doc.contents;
  let best = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      const last = i === path.length - 1;
      const value = pair.value;
      const empty = value === null || (isScalar(value) && value.value === null && (value.source ?? '') === '');
      if ((last && atKey) || empty) {
        const k = rangeStart(pair.key);
        if (k !== undefined) best = k;
        if (empty) break;
      }
      node = value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
    } else {
      break;
    }
    if (node === undefined) break;
    if (!(i === path.length - 1 && atKey)) {
      const r = rangeStart(node);
      if (r !== undefined) best = r;
    }
  }
  return best;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return Array.isArray(range) ? range[0] : undefined;
}
