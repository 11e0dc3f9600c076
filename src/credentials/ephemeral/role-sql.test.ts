import { describe, expect, it } from 'vitest';
import { deriveVerifier } from '../../crypto/scram.js';
import {
  createRoleSql,
  dropRoleSql,
  formatMark,
  listRolesSql,
  lockOutRoleSql,
  parseMark,
  roleNameFor,
  scramPasswordVerifier,
  terminateBackendsSql,
} from './role-sql.js';

const GATEWAY = '6f1c2b9e-8d3a-4e5f-9a7b-0c1d2e3f4a5b';
const SESSION = '3f2a9c0d-1e4b-4c5d-8e6f-7a8b9c0d1e2f';

describe('roleNameFor', () => {
  it('is the prefix and the first 12 hex digits of the session id', () => {
    expect(roleNameFor('jitgate_', SESSION)).toBe('jitgate_3f2a9c0d1e4b');
    expect(roleNameFor('tmp_', SESSION.toUpperCase())).toBe('tmp_3f2a9c0d1e4b');
  });

  it('refuses a session id without enough hex digits', () => {
    expect(() => roleNameFor('jitgate_', 'xyz')).toThrow(RangeError);
  });
});

describe('role mark', () => {
  const mark = { gateway: GATEWAY, connection: 'prod-db', session: SESSION, user: 'alice@example.com' };

  it('round-trips and reads well for a DBA', () => {
    const text = formatMark(mark);
    expect(text).toBe(`jitgate ephemeral role v1; gateway=${GATEWAY}; connection=prod-db; session=${SESSION}; user="alice@example.com"`);
    expect(parseMark(text)).toEqual(mark);
  });

  it('keeps hostile user names inside the user field', () => {
    for (const user of ['"; gateway=x', 'a"; session=evil', 'back\\slash', 'new\nline', '']) {
      expect(parseMark(formatMark({ ...mark, user }))).toEqual({ ...mark, user });
    }
  });

  it('does not take look-alike comments for ours', () => {
    for (const comment of [
      null,
      '',
      'jitgate ephemeral role',
      'managed by the DBA; jitgate ephemeral role v1',
      formatMark(mark).replace('v1', 'v2'),
      formatMark(mark) + '; extra',
      formatMark(mark).replace(`gateway=${GATEWAY}`, 'gateway=whatever'),
      formatMark(mark).replace('user="alice@example.com"', 'user=alice'),
    ]) {
      expect(parseMark(comment)).toBeUndefined();
    }
  });
});

describe('statements', () => {
  it('creates the role with LOGIN only, a verifier, VALID UNTIL, membership and the mark, in one query', () => {
    const sql = createRoleSql({
      name: 'jitgate_3f2a9c0d1e4b',
      passwordVerifier: 'SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5',
      validUntil: Date.UTC(2026, 0, 1, 12, 30),
      memberOf: ['app_readonly', 'Reporting "Team"'],
      comment: "it's ours",
    });
    expect(sql).toBe(
      `CREATE ROLE "jitgate_3f2a9c0d1e4b" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT ` +
        `CONNECTION LIMIT 1 PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5' VALID UNTIL '2026-01-01T12:30:00.000Z' ` +
        `IN ROLE "app_readonly", "Reporting ""Team""";\n` +
        `COMMENT ON ROLE "jitgate_3f2a9c0d1e4b" IS 'it''s ours'`,
    );
  });

  it('quotes the name in every removal step', () => {
    const name = 'x"; DROP ROLE admin; --';
    const q = '"x""; DROP ROLE admin; --"';
    expect(lockOutRoleSql(name)).toBe(`ALTER ROLE ${q} NOLOGIN;\nGRANT ${q} TO CURRENT_USER`);
    expect(dropRoleSql(name)).toBe(`REASSIGN OWNED BY ${q} TO CURRENT_USER;\nDROP OWNED BY ${q};\nDROP ROLE ${q}`);
    expect(terminateBackendsSql("o'hara")).toContain(`usename = 'o''hara'`);
  });

  it('lists by exact prefix, not LIKE (where _ would match anything)', () => {
    expect(listRolesSql('jitgate_')).toContain(`left(rolname, 8) = 'jitgate_'`);
    expect(listRolesSql('jitgate_')).not.toMatch(/LIKE/i);
  });
});

describe('scramPasswordVerifier', () => {
  it("is PostgreSQL's stored format for the password, not the password", () => {
    const salt = Buffer.from('0123456789abcdef');
    const text = scramPasswordVerifier('s3cret', salt, 4096);
    const v = deriveVerifier('s3cret', salt, 4096);
    expect(text).toBe(`SCRAM-SHA-256$4096:${salt.toString('base64')}$${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`);
    expect(text).not.toContain('s3cret');
  });
});
