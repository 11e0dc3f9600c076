/**
 * A private MariaDB server per test suite (see bench/mysql-harness.mjs for what it holds).
 *
 *   const my = await startMariadb();
 *   afterAll(() => my.cleanup());
 */
export { startMariadb } from '../../bench/mysql-harness.mjs';
export type { MariadbServer, MariadbCredential } from '../../bench/mysql-harness.mjs';
