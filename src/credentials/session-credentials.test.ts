import { afterEach, describe, expect, it } from 'vitest';
import type { ConnectionConfig } from '../config/types.js';
import { ManualClock } from '../core/clock.js';
import type { BackendTarget } from '../core/types.js';
import { createLogger } from '../obs/log.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite.js';
import { SessionCredentials } from './session-credentials.js';

const connection = (name: string, over: Partial<ConnectionConfig> = {}): ConnectionConfig => ({
  name,
  type: 'postgres',
  host: '127.0.0.1',
  port: 1, // nothing listens: a sweep fails fast and is only logged
  database: 'app',
  user: 'gw',
  tls: { mode: 'disable' },
  connectTimeoutMs: 500,
  ...over,
});
const target = (c: ConnectionConfig): BackendTarget => ({ ...c, connection: c.name, protocol: 'postgres', password: 'pw' });

const stores: SqliteStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) void s.close();
});

function build(connections: ConnectionConfig[], store = openSqliteStore(':memory:')) {
  stores.push(store);
  return new SessionCredentials({
    connections,
    targets: new Map(connections.map((c) => [c.name, target(c)])),
    database: store.database,
    clock: new ManualClock(),
    log: createLogger({ level: 'silent' }),
    liveSessions: async () => new Set(),
  });
}

const request = { sessionId: '11111111-1111-4111-8111-111111111111', user: 'alice', validUntil: 0 };

describe('SessionCredentials', () => {
  it('hands static connections their stored credential, and nothing to clean up', async () => {
    const static1 = connection('plain');
    const creds = build([static1, connection('explicit', { credentials: { mode: 'static' } })]);
    await creds.firstSweep;
    const lease = await creds.createFor('plain', request);
    expect(lease.target).toEqual(target(static1));
    lease.release();
    expect((await creds.createFor('explicit', request)).target.user).toBe('gw');
    await creds.close();
  });

  it('refuses a connection it does not know', async () => {
    const creds = build([connection('plain')]);
    await expect(creds.createFor('nope', request)).rejects.toMatchObject({ code: 'unknown_connection' });
  });

  it('refuses the session when the ephemeral backend is unreachable, leaving the record to the janitor', async () => {
    const creds = build([connection('eph', { credentials: { mode: 'ephemeral', roles: ['r'], rolePrefix: 'jitgate_' } })]);
    await creds.firstSweep;
    await expect(creds.createFor('eph', request)).rejects.toMatchObject({ code: 'backend_unavailable' });
    // The connect failed before CREATE ROLE was sent: nothing exists, nothing is pending.
    expect(creds.repository.pending('eph')).toEqual([]);
    await creds.close();
  });

  it('still sweeps a connection switched back to static that has roles left from before', async () => {
    const store = openSqliteStore(':memory:');
    const first = build([connection('was-eph', { credentials: { mode: 'ephemeral', roles: ['r'], rolePrefix: 'jitgate_' } })], store);
    first.repository.recordCreating({
      connection: 'was-eph',
      name: 'jitgate_111111111111',
      sessionId: request.sessionId,
      user: 'alice',
      validUntil: 0,
      createdAt: 0,
    });
    await first.close();
    const second = build([connection('was-eph')], store);
    await second.firstSweep;
    // The backend is unreachable, so the row stays; what matters is that a drop was attempted.
    expect(second.repository.pending('was-eph')[0]?.lastError).toMatch(/could not (reach|connect)/);
    expect((await second.createFor('was-eph', request)).target.user).toBe('gw');
    await second.close();
  });
});
