import { afterEach, describe, expect, it } from 'vitest';
import { GatewayError } from '../../core/errors.js';
import type { BackendTarget } from '../../core/types.js';
import { createLogger } from '../../obs/log.js';
import { BackendQueryError } from '../../protocols/postgres/admin-client.js';
import { openSqliteStore, type SqliteStore } from '../../store/sqlite.js';
import { MaybeCreatedError, type ListedRole, type RemoveOutcome, type RoleAdmin } from './pg-roles.js';
import { EphemeralCredentials } from './provider.js';
import { EphemeralRoleRepository } from './repository.js';
import { formatMark, parseMark, type CreateRoleSpec } from './role-sql.js';

const ADMIN: BackendTarget = {
  connection: 'prod',
  protocol: 'postgres',
  host: 'db.internal',
  port: 5432,
  database: 'app',
  user: 'jitgate_admin',
  password: 'admin-secret',
  tls: { mode: 'require' },
  connectTimeoutMs: 1_000,
};
const S1 = '11111111-1111-4111-8111-111111111111';
const S2 = '22222222-2222-4222-8222-222222222222';
const S3 = '33333333-3333-4333-8333-333333333333';
const OTHER_GATEWAY = '99999999-9999-4999-8999-999999999999';

/** Roles on a pretend backend; failures switched on per test. */
class FakeAdmin implements RoleAdmin {
  readonly roles = new Map<string, string | null>();
  readonly created: CreateRoleSpec[] = [];
  readonly removed: string[] = [];
  createError: Error | undefined;
  removeError: Error | undefined;
  removeGate: Promise<void> | undefined;

  async create(spec: CreateRoleSpec): Promise<void> {
    this.created.push(spec);
    if (this.createError instanceof MaybeCreatedError) this.roles.set(spec.name, spec.comment);
    if (this.createError) throw this.createError;
    this.roles.set(spec.name, spec.comment);
  }

  async list(prefix: string): Promise<ListedRole[]> {
    return [...this.roles].filter(([n]) => n.startsWith(prefix)).map(([name, comment]) => ({ name, comment }));
  }

  async remove(name: string, isOurs: (comment: string | null) => boolean): Promise<RemoveOutcome> {
    await this.removeGate;
    if (this.removeError) throw this.removeError;
    if (!this.roles.has(name)) return 'absent';
    if (!isOurs(this.roles.get(name) ?? null)) return 'not_ours';
    this.roles.delete(name);
    this.removed.push(name);
    return 'dropped';
  }
}

const stores: SqliteStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) void s.close();
});

function setup(live: Set<string> = new Set()) {
  const store = openSqliteStore(':memory:');
  stores.push(store);
  const repository = new EphemeralRoleRepository(store.database);
  const admin = new FakeAdmin();
  let now = Date.UTC(2026, 0, 1);
  const provider = new EphemeralCredentials({
    admin: ADMIN,
    settings: { roles: ['app_readonly'], rolePrefix: 'jitgate_' },
    repository,
    gatewayId: repository.gatewayId(),
    now: () => now,
    log: createLogger({ level: 'silent' }),
    liveSessions: async () => live,
    roleAdmin: admin,
  });
  return { store, repository, admin, provider, advance: (ms: number) => (now += ms), gatewayId: repository.gatewayId() };
}

const request = (sessionId: string) => ({ sessionId, user: 'alice', validUntil: Date.UTC(2026, 0, 1, 1) });

describe('createFor', () => {
  it("gives the session its own role and the backend's target with that role's credential", async () => {
    const { provider, admin, repository, gatewayId } = setup();
    const lease = await provider.createFor(request(S1));
    expect(lease.target).toEqual({ ...ADMIN, user: 'jitgate_111111111111', password: lease.target.password });
    expect(lease.target.password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const spec = admin.created[0]!;
    expect(spec).toMatchObject({ name: 'jitgate_111111111111', validUntil: Date.UTC(2026, 0, 1, 1), memberOf: ['app_readonly'] });
    expect(spec.passwordVerifier).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(spec.passwordVerifier).not.toContain(lease.target.password);
    expect(parseMark(spec.comment)).toEqual({ gateway: gatewayId, connection: 'prod', session: S1, user: 'alice' });
    expect(repository.pending('prod')).toMatchObject([{ name: 'jitgate_111111111111', sessionId: S1, user: 'alice' }]);
    expect(provider.active).toBe(1);
  });

  it('drops the role when the lease is released, once', async () => {
    const { provider, admin, repository } = setup();
    const lease = await provider.createFor(request(S1));
    lease.release();
    lease.release();
    await provider.settled();
    expect(admin.removed).toEqual(['jitgate_111111111111']);
    expect(admin.roles.size).toBe(0);
    expect(repository.pending('prod')).toEqual([]);
    expect(repository.get('prod', 'jitgate_111111111111')).toMatchObject({ droppedAt: Date.UTC(2026, 0, 1), lastError: null });
    expect(provider.active).toBe(0);
  });

  it('refuses the session with 28000-class errors the client can act on, naming no credential', async () => {
    const cases: Array<[string, string]> = [
      ['42704', 'a role this connection grants (credentials.roles) does not exist on the backend'],
      ['42501', "the gateway's backend user is not allowed to create roles or to grant the configured roles"],
      ['XX000', 'the backend refused (SQLSTATE XX000)'],
    ];
    for (const [sqlstate, detail] of cases) {
      const { provider, admin, repository } = setup();
      admin.createError = new BackendQueryError(
        new Map([
          ['C', sqlstate],
          ['M', 'role "jitgate_admin" is secret-ish'],
        ]),
      );
      const err = await provider.createFor(request(S1)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GatewayError);
      expect(err).toMatchObject({ code: 'credential_unavailable', detail });
      expect((err as GatewayError).message).toBe('could not create a database user for this session on connection "prod"');
      expect(JSON.stringify(err) + (err as Error).message).not.toMatch(/jitgate_admin|admin-secret/);
      expect(repository.pending('prod')).toEqual([]);
      expect(repository.get('prod', 'jitgate_111111111111')?.lastError).toBe('not created');
      expect(provider.active).toBe(0);
    }
  });

  it('removes a role whose CREATE had an unknown outcome before refusing', async () => {
    const { provider, admin, repository } = setup();
    admin.createError = new MaybeCreatedError(new Error('connection reset'));
    await expect(provider.createFor(request(S1))).rejects.toMatchObject({ code: 'backend_unavailable' });
    expect(admin.roles.size).toBe(0);
    expect(repository.pending('prod')).toEqual([]);
  });

  it('passes on a connect failure as it is (already phrased for clients)', async () => {
    const { provider, admin } = setup();
    const connectError = new GatewayError(
      'backend_unavailable',
      'could not connect to backend for connection "prod"',
      'could not reach backend: ECONNREFUSED',
    );
    admin.createError = connectError;
    await expect(provider.createFor(request(S1))).rejects.toBe(connectError);
  });

  it('fails closed when the store cannot record the role, before touching the backend', async () => {
    const { provider, admin, store } = setup();
    store.database.exec('DROP TABLE ephemeral_roles');
    await expect(provider.createFor(request(S1))).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(admin.created).toEqual([]);
    expect(provider.active).toBe(0);
  });

  it('records a failed drop and leaves the role to the janitor', async () => {
    const { provider, admin, repository } = setup();
    const lease = await provider.createFor(request(S1));
    admin.removeError = new BackendQueryError(
      new Map([
        ['C', '42501'],
        ['M', 'permission denied'],
      ]),
    );
    lease.release();
    await provider.settled();
    expect(repository.pending('prod')).toMatchObject([{ name: 'jitgate_111111111111', lastError: 'permission denied' }]);
    expect(admin.roles.has('jitgate_111111111111')).toBe(true);
  });

  it('waits in close() for drops in flight', async () => {
    const { provider, admin } = setup();
    const lease = await provider.createFor(request(S1));
    let open!: () => void;
    admin.removeGate = new Promise((r) => (open = r));
    lease.release();
    const closed = provider.close();
    let done = false;
    void closed.then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    open();
    await closed;
    expect(admin.roles.size).toBe(0);
    await expect(provider.createFor(request(S2))).rejects.toMatchObject({ code: 'shutting_down' });
  });
});

describe('sweep', () => {
  it('drops roles of sessions that are over, and only those', async () => {
    const live = new Set<string>();
    const { provider, admin, repository, gatewayId } = setup(live);
    const held = await provider.createFor(request(S1)); // a live session in this process
    const leftover = await provider.createFor(request(S2));
    admin.removeError = new Error('backend down');
    leftover.release(); // drop fails: recorded, left for the sweep
    await provider.settled();
    admin.removeError = undefined;

    // Live in the store (e.g. another path) though not held here: not touched.
    live.add(S3);
    const mark = (session: string, over: Partial<Parameters<typeof formatMark>[0]> = {}) =>
      formatMark({ gateway: gatewayId, connection: 'prod', session, user: 'bob', ...over });
    admin.roles.set('jitgate_333333333333', mark(S3));
    // Ours on the backend but missing from the store (e.g. the store row was lost): dropped.
    admin.roles.set('jitgate_444444444444', mark('44444444-4444-4444-8444-444444444444'));
    // Look-alikes and others' roles: never.
    admin.roles.set('jitgate_555555555555', null);
    admin.roles.set('jitgate_666666666666', 'a role the DBA made');
    admin.roles.set('jitgate_777777777777', mark('77777777-7777-4777-8777-777777777777', { gateway: OTHER_GATEWAY }));
    admin.roles.set('jitgate_888888888888', mark('88888888-8888-4888-8888-888888888888', { connection: 'staging' }));

    const result = await provider.sweep();
    expect(result.dropped.sort()).toEqual(['jitgate_222222222222', 'jitgate_444444444444']);
    expect(result.failed).toEqual([]);
    expect(result.foreign.sort()).toEqual(['jitgate_777777777777', 'jitgate_888888888888']);
    expect([...admin.roles.keys()].sort()).toEqual([
      'jitgate_111111111111',
      'jitgate_333333333333',
      'jitgate_555555555555',
      'jitgate_666666666666',
      'jitgate_777777777777',
      'jitgate_888888888888',
    ]);
    expect(repository.pending('prod').map((r) => r.sessionId)).toEqual([S1]);
    held.release();
  });

  it('marks a recorded role that never came to exist as done', async () => {
    const { provider, repository } = setup();
    repository.recordCreating({
      connection: 'prod',
      name: 'jitgate_222222222222',
      sessionId: S2,
      user: 'alice',
      validUntil: 1,
      createdAt: 0,
    });
    expect(await provider.sweep()).toEqual({ dropped: ['jitgate_222222222222'], failed: [], foreign: [] });
    expect(repository.pending('prod')).toEqual([]);
  });

  it("leaves a recorded name alone when the role there is not marked as that session's", async () => {
    const { provider, admin, repository } = setup();
    repository.recordCreating({
      connection: 'prod',
      name: 'jitgate_222222222222',
      sessionId: S2,
      user: 'alice',
      validUntil: 1,
      createdAt: 0,
    });
    admin.roles.set('jitgate_222222222222', 'made by hand');
    await provider.sweep();
    expect(admin.roles.has('jitgate_222222222222')).toBe(true);
    expect(repository.get('prod', 'jitgate_222222222222')?.lastError).toMatch(/left alone/);
    expect(repository.pending('prod')).toEqual([]);
  });

  it('keeps going when the backend cannot list roles', async () => {
    const { provider, admin, repository } = setup();
    repository.recordCreating({
      connection: 'prod',
      name: 'jitgate_222222222222',
      sessionId: S2,
      user: 'alice',
      validUntil: 1,
      createdAt: 0,
    });
    admin.list = () => Promise.reject(new Error('down'));
    expect((await provider.sweep()).dropped).toEqual(['jitgate_222222222222']);
  });
});
