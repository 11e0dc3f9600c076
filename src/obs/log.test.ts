import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { REDACTED, createLogger, isSecretKey, scrubSecrets, type LogLevel } from './log.js';

function capture(level: LogLevel = 'info') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const logger = createLogger({ level, destination });
  return { logger, lines, raw: () => lines.join('\n'), parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const SECRETS = [
  'hunter2-password',
  'jg_tok_9f8e7d6c5b4a',
  'Bearer eyJhbGciOi.secret',
  'sid=abc123cookie',
  'client-secret-value',
  'AKIA-api-key-value',
  'pg-backend-pw',
];

describe('createLogger', () => {
  it('writes JSON lines with a level label and time', () => {
    const { logger, parsed } = capture();
    logger.info({ session: 's1' }, 'session started');
    const [line] = parsed();
    expect(line).toMatchObject({ level: 'info', session: 's1', msg: 'session started' });
    expect(typeof line?.time).toBe('string');
  });

  it('never shows the value of a password or token, at any depth, in children and in errors', () => {
    const { logger, raw, parsed } = capture('debug');
    const connection = { name: 'demo', host: 'db', backendPassword: SECRETS[6], tls: { mode: 'require' } };
    logger.info({ user: 'alice', password: SECRETS[0], token: SECRETS[1] }, 'login');
    logger.info({ req: { method: 'GET', url: '/api', headers: { authorization: SECRETS[2], cookie: SECRETS[3] } } }, 'request');
    logger.info({ config: { identities: { oidc: { issuer: 'https://idp', clientSecret: SECRETS[4] } } } }, 'config');
    logger.info({ deep: [{ a: { b: { c: { apiKey: SECRETS[5] } } } }] }, 'deep');
    logger.debug({ connection }, 'connect');
    logger.child({ token: SECRETS[1] }).info({ accessToken: SECRETS[1] }, 'child');
    const err = Object.assign(new Error('backend auth failed'), { password: SECRETS[6] });
    logger.error({ err }, 'failed');
    logger.warn({ list: [SECRETS[0]].map((password) => ({ password })) }, 'array');

    const text = raw();
    for (const secret of SECRETS) expect(text).not.toContain(secret);
    expect(text).toContain(REDACTED);

    const lines = parsed();
    expect(lines[0]).toMatchObject({ user: 'alice', password: REDACTED, token: REDACTED });
    expect(lines[1]).toMatchObject({ req: { method: 'GET', headers: { authorization: REDACTED, cookie: REDACTED } } });
    expect(lines[4]).toMatchObject({ connection: { name: 'demo', host: 'db', backendPassword: REDACTED, tls: { mode: 'require' } } });
    expect(lines[6]).toMatchObject({ err: { message: 'backend auth failed', password: REDACTED } });
    // The caller's objects are not modified.
    expect(connection.backendPassword).toBe(SECRETS[6]);
    expect(err.password).toBe(SECRETS[6]);
  });

  it('keeps harmless fields whose names merely mention tokens', () => {
    const { logger, parsed } = capture();
    logger.info({ tokenTtlMs: 900_000, tokenId: 'tok_1', secretsCount: 3, auth: { methods: ['scram-sha-256'] } }, 'config');
    expect(parsed()[0]).toMatchObject({ tokenTtlMs: 900_000, tokenId: 'tok_1', secretsCount: 3, auth: { methods: ['scram-sha-256'] } });
  });

  it('respects the level', () => {
    const { logger, lines } = capture('warn');
    logger.info('hidden');
    logger.warn('shown');
    expect(lines).toHaveLength(1);
  });
});

describe('scrubSecrets', () => {
  it('classifies key names', () => {
    for (const k of [
      'password',
      'PGPASSWORD',
      'backend_password',
      'clientSecret',
      'access_token',
      'Authorization',
      'set-cookie',
      'x-api-key',
      'privateKey',
    ]) {
      expect(isSecretKey(k), k).toBe(true);
    }
    for (const k of ['user', 'tokenTtlMs', 'tokenId', 'secrets', 'passwordless', 'host']) {
      expect(isSecretKey(k), k).toBe(false);
    }
  });

  it('survives cycles and returns the same object when nothing is secret', () => {
    const plain = { name: 'x', nested: { list: [1, 2], at: new Date(0) } };
    expect(scrubSecrets(plain)).toBe(plain);
    const a: Record<string, unknown> = { name: 'x' };
    a.self = a;
    // A cycle is cut rather than kept: a kept back-reference would lead the serializer to the original.
    expect(scrubSecrets(a)).toEqual({ name: 'x', self: '[circular]' });
    const b: Record<string, unknown> = { password: 'p' };
    b.self = b;
    const out = scrubSecrets(b) as Record<string, unknown>;
    expect(out.password).toBe(REDACTED);
    expect(JSON.stringify(out)).not.toContain('"p"');
    expect(b.password).toBe('p');
  });
});
