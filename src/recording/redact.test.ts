import { describe, expect, it } from 'vitest';
import { redactStatement } from './redact.js';

describe('redactStatement', () => {
  it.each([
    ["ALTER ROLE bob PASSWORD 'hunter2'", "ALTER ROLE bob PASSWORD '[redacted]'"],
    ["alter user bob with encrypted password 'SCRAM-SHA-256$4096:abc$def:ghi'", "alter user bob with encrypted password '[redacted]'"],
    ["create role x login password E'it''s secret'", "create role x login password '[redacted]'"],
    ['alter role x password $t$dollar secret$t$', "alter role x password '[redacted]'"],
    [
      "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password 'p4ss')",
      "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password '[redacted]')",
    ],
    ["select dblink_connect('host=db password=s3cret dbname=x')", "select dblink_connect('host=db password=[redacted] dbname=x')"],
    ["select dblink_connect('host=db password=''s3 cret'' dbname=x')", "select dblink_connect('host=db password=[redacted] dbname=x')"],
  ])('%s', (input, output) => {
    expect(redactStatement(input)).toEqual({ text: output, redacted: true });
  });

  it('leaves statements without a password literal alone', () => {
    expect(redactStatement('select password_hash from users')).toEqual({ text: 'select password_hash from users', redacted: false });
    expect(redactStatement('select 1')).toEqual({ text: 'select 1', redacted: false });
  });
});
