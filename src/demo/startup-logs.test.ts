import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { embeddedLogs, terminalLine } from './startup-logs.js';

const dir = mkdtempSync(path.join(tmpdir(), 'jitgate-logs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('embeddedLogs', () => {
  it('in a terminal: JSON lines to <dataDir>/jitgate.log, warnings and errors as one short line on stderr', async () => {
    const stderr: string[] = [];
    const logs = embeddedLogs({ dataDir: dir, level: 'info', terminal: true, stderr: (t) => stderr.push(t) });
    logs.logger.info({ port: 1 }, 'listener up');
    logs.logger.warn({ password: 'hunter2' }, 'demo database is stuck');
    await logs.close();
    expect(logs.file).toBe(path.join(dir, 'jitgate.log'));
    const lines = readFileSync(logs.file!, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      ['info', 'listener up'],
      ['warn', 'demo database is stuck'],
    ]);
    expect(lines[1]?.password).toBe('[redacted]');
    expect(stderr).toEqual(['jitgate warn: demo database is stuck\n']);
  });

  it('elsewhere: JSON lines on stderr, nothing in a file', async () => {
    const stderr: string[] = [];
    const logs = embeddedLogs({ dataDir: path.join(dir, 'other'), level: 'info', terminal: false, stderr: (t) => stderr.push(t) });
    logs.logger.info('hello');
    await logs.close();
    expect(logs.file).toBeUndefined();
    expect(JSON.parse(stderr.join(''))).toMatchObject({ level: 'info', msg: 'hello' });
  });

  it('shortens only warnings and above, and ignores what is not a log line', () => {
    expect(terminalLine('{"level":"error","msg":"boom"}')).toBe('jitgate error: boom\n');
    expect(terminalLine('{"level":"info","msg":"fine"}')).toBeUndefined();
    expect(terminalLine('not json')).toBeUndefined();
  });
});
