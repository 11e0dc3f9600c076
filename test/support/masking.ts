/** Shared fixtures of the masking e2e tests: the rules, the data, and clients through the gateway. */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { AccessRepository } from '../../src/access/repository.js';
import { mintToken } from '../../src/access/tokens.js';
import type { SqliteStore } from '../../src/store/sqlite.js';
import type { TestGateway } from './gateway.js';

export const MASKING_YAML = `
masking:
  rules:
    - name: pii
      connections: [app]
      except: [dba]
      columns:
        users.email: email
        "public.users.ssn": { strategy: partial, keep: 4 }
        users.phone: phone
        users.card: card
        users.name: hash
        users.age: redact
        users.secret: "null"
        accounts.email: email
  detectors:
    - connections: [app]
      use: all
      except: [dba]
`;

export const MASKING_SETUP = `
create table users (id int primary key, email text unique, name text, ssn varchar(11), phone text, card text, age int, secret text, bio text);
insert into users values
  (1, 'alice@example.com', 'Alice', '123-45-6789', '+1 415-555-0134', '4111 1111 1111 1111', 31, 'top', 'likes tea'),
  (2, 'bob@example.com', 'Bob', '987-65-4321', '+44 20 7946 0958', '5500 0000 0000 0004', 42, 'hush', 'mail me at bob.personal@gmail.com');
create table notes (id int, body text);
insert into notes values (1, 'hello'), (2, 'server 10.1.2.3 key AKIAIOSFODNN7EXAMPLE');
create view contacts as select id, email as contact, upper(bio) as shout from users;
create table accounts (id int, email text) partition by range (id);
create table accounts_low partition of accounts for values from (0) to (100);
insert into accounts values (1, 'alice@example.com');
create table users_archive () inherits (users);
insert into users_archive (id, email, ssn) values (3, 'bob@example.com', '987-65-4321');
create function users_audit() returns trigger language plpgsql as $$
begin
  if new.bio = 'trigger-test' then raise notice 'changing %', old.email; end if;
  return new;
end $$;
create trigger users_audit before update on users for each row execute function users_audit();
grant all on all tables in schema public to public;
`;

/** A token whose grant carries groups (admin-issued ones carry none). */
export async function tokenWithGroups(g: TestGateway, groups: string[], user = 'dora'): Promise<string> {
  const store = g.gateway.store as SqliteStore;
  const repo = await AccessRepository.open(store.sql);
  const now = Date.now();
  return repo.transaction(async () => {
    const id = randomUUID();
    await repo.insertGrant({
      id,
      user,
      groups,
      connection: 'app',
      reason: 'test',
      requestId: null,
      approvedBy: [],
      breakGlass: false,
      policy: null,
      issuedBy: 'local-admin:test',
      createdAt: now,
      expiresAt: now + 3_600_000,
      revokedAt: null,
      revokedBy: null,
      revokeReason: null,
    });
    const minted = await mintToken(store, { user, connection: 'app', ttlMs: 3_600_000, now });
    await repo.linkToken(minted.id, id, now + 3_600_000);
    return minted.token;
  });
}

export async function client(g: TestGateway, token?: string, user = 'alice', connection = 'app'): Promise<pg.Client> {
  const c = new pg.Client({ host: g.host, port: g.port, user, database: connection, password: token ?? (await g.token()) });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

// Raw protocol message builders for tests that speak the extended protocol by hand.
export function cstr(s: string): Buffer {
  return Buffer.from(s + '\0', 'utf8');
}
export function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}
export function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}
export function msg(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from(type), int32(body.length + 4), body]);
}
