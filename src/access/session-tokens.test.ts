/**
 * Single-session tokens against a real SQLite store: the service mints them with the connection's
 * tokenUse; a token opens one session; a second claim is refused (auth_failed) and audited; the end
 * of the session revokes it, and the spent token still authenticates so its reuse can be recorded.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { AuditLog } from '../audit/log.js';
import { ManualClock } from '../core/clock.js';
import { GatewayError } from '../core/errors.js';
import type { Identity, SessionCounters, SessionEndReason } from '../core/types.js';
import { createLogger } from '../obs/log.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite.js';
import { AccessRepository } from './repository.js';
import { AccessService } from './service.js';
import { SessionTokens, TOKEN_REUSED_MESSAGE } from './session-tokens.js';
import { TokenAuthority } from './tokens.js';
import { GrantAwareVerifier } from './verifier.js';

const alice: Identity = { user: 'alice', groups: ['eng'], kind: 'human', via: 'test' };
const counters = { bytesFromClient: 0, bytesToClient: 0, statements: 0 };
let store: SqliteStore;
let clock: ManualClock;
let repo: AccessRepository;
let audit: AuditLog;
let service: AccessService;
let tokens: SessionTokens;

beforeEach(async () => {
  store = openSqliteStore(':memory:');
  clock = new ManualClock();
  repo = await AccessRepository.open(store.sql);
  audit = await AuditLog.open(store.sql, () => clock.now());
  const log = createLogger({ level: 'silent' });
  service = new AccessService({
    repo,
    store,
    policies: [
      {
        name: 'auto',
        connections: ['*'],
        groups: ['*'],
        users: [],
        access: {
          approval: 'auto',
          approvers: [],
          approvals: 1,
          maxDurationMs: 3_600_000,
          breakGlass: false,
          pendingExpiryMs: 3_600_000,
          requireReason: false,
        },
      },
    ],
    connections: ['once', 'often'],
    clock,
    log,
    tokenTtlMs: 900_000,
    tokenUse: (c) => (c === 'once' ? 'session' : 'grant'),
  });
  tokens = new SessionTokens({ repo, revokeToken: (id, at) => store.revokeToken(id, at), audit, clock, log });
});

afterEach(() => {
  service.close();
  void store.close();
});

async function mint(connection: string) {
  await service.requestAccess(alice, { connection, durationMs: 3_600_000, reason: '' });
  return await service.mintToken(alice, connection);
}

const login = (tokenId: string, connection = 'once') => ({
  tokenId,
  user: 'alice',
  connection,
  protocol: 'postgres',
  clientAddress: '127.0.0.1',
});
let sessions = 0;
const session = () => ({ id: `s${++sessions}`, end: (_reason: SessionEndReason, _counters: SessionCounters): void => undefined });

it("mints with the connection's token use", async () => {
  expect((await mint('once')).use).toBe('session');
  expect(await repo.tokenUse((await mint('often')).id)).toBe('grant');
});

it('one session per token; a second is refused and audited; the end revokes the token', async () => {
  const t = await mint('once');
  const first = await tokens.open(login(t.id), session);
  let refused: unknown;
  try {
    await tokens.open(login(t.id), session);
  } catch (err) {
    refused = err;
  }
  expect(refused).toBeInstanceOf(GatewayError);
  expect(refused).toMatchObject({ code: 'auth_failed', message: TOKEN_REUSED_MESSAGE });
  expect((await audit.about(t.id)).map((e) => [e.type, e.data.firstSession])).toEqual([['token.reused', first.id]]);

  const verifier = new GrantAwareVerifier(new TokenAuthority(store), repo, () => clock.now());
  expect(await verifier.verifyCleartext('alice', 'once', t.token)).toBe(t.id);
  first.end('client_quit', counters);
  first.end('client_quit', counters);
  expect(await store.activeTokens('alice', 'once', clock.now())).toHaveLength(0);
  // Spent, yet it still authenticates, so the next login reaches the refusal and is audited.
  expect(await verifier.verifyCleartext('alice', 'once', t.token)).toBe(t.id);
  await expect(tokens.open(login(t.id), session)).rejects.toThrow(TOKEN_REUSED_MESSAGE);
  expect((await audit.about(t.id)).filter((e) => e.type === 'token.reused')).toHaveLength(2);
  // Past its own lifetime it is an unknown password, like any expired token.
  await clock.advanceSettled(900_001);
  expect(await verifier.verifyCleartext('alice', 'once', t.token)).toBeUndefined();
});

it('a session that could not open gives the claim back', async () => {
  const t = await mint('once');
  await expect(
    tokens.open(login(t.id), () => {
      throw new GatewayError('store_unavailable', 'no');
    }),
  ).rejects.toThrow('no');
  const s = await tokens.open(login(t.id), session);
  expect(s.id).toMatch(/^s\d+$/);
});

it('tokens with use grant open any number of sessions and stay valid', async () => {
  const t = await mint('often');
  const a = await tokens.open(login(t.id, 'often'), session);
  const b = await tokens.open(login(t.id, 'often'), session);
  a.end('client_quit', counters);
  b.end('client_quit', counters);
  expect((await store.activeTokens('alice', 'often', clock.now())).map((r) => r.id)).toContain(t.id);
});
