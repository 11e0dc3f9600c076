import { describe, expect, it } from 'vitest';
import { settingsOfOptions, sortStartupParams, splitOptions, StartupOptionsError } from './startup-params.js';

describe('options, read as PostgreSQL reads them', () => {
  it('splits on whitespace; a backslash makes the next character literal', () => {
    expect(splitOptions('  -c a=1\t--b=2\n')).toEqual(['-c', 'a=1', '--b=2']);
    expect(splitOptions('-c x=two\\ words -c y=back\\\\slash')).toEqual(['-c', 'x=two words', '-c', 'y=back\\slash']);
    expect(splitOptions('')).toEqual([]);
  });

  it('reads -c name=value, -cname=value and --name=value, dashes in names as underscores', () => {
    expect(settingsOfOptions('-c search_path=a,b -cwork_mem=8MB --statement-timeout=5s')).toEqual([
      { name: 'search_path', value: 'a,b' },
      { name: 'work_mem', value: '8MB' },
      { name: 'statement_timeout', value: '5s' },
    ]);
    expect(settingsOfOptions('-c role=x=y')).toEqual([{ name: 'role', value: 'x=y' }]);
  });

  it('refuses what PostgreSQL would not take or the gateway does not pass', () => {
    for (const bad of ['-c', '-c name', '--flag', '-B 100', 'stray', '-F']) {
      expect(() => settingsOfOptions(bad), bad).toThrow(StartupOptionsError);
    }
  });
});

describe('startup parameters', () => {
  it('passes display settings as they are, asks for every other setting to be decided, and leaves identity to the gateway', () => {
    const sorted = sortStartupParams(
      new Map([
        ['user', 'alice'],
        ['database', 'app'],
        ['application_name', 'psql'],
        ['DateStyle', 'ISO'],
        ['role', 'owner'],
        ['search_path', 'evil'],
        ['_pq_.x', '1'],
        ['options', '-c search_path=acc'],
      ]),
    );
    expect([...sorted.passed.keys()]).toEqual(['application_name', 'DateStyle']);
    // options first, then the packet's own parameters, which PostgreSQL applies after them.
    expect(sorted.requested).toEqual([
      { name: 'search_path', value: 'acc' },
      { name: 'role', value: 'owner' },
      { name: 'search_path', value: 'evil' },
    ]);
  });
});
