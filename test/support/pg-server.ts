/**
 * A private PostgreSQL 15 server per test suite: ephemeral port on 127.0.0.1, SCRAM by default, TLS on,
 * one role per auth method (see PgUsers), database "app" with table "items".
 *
 * The implementation is plain JS in bench/pg-harness.mjs so that `npm run bench` can use it without a
 * TypeScript build; this module is the typed entry point for tests.
 *
 *   const pg = await startPostgres();
 *   afterAll(() => pg.cleanup());
 */
export { startPostgres, PG_USERS, freePort, pgBin } from '../../bench/pg-harness.mjs';
export type { PgServer, PgUsers, PgUserKey, PgCredential, StartPostgresOptions, StopMode } from '../../bench/pg-harness.mjs';
