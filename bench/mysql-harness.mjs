/**
 * A private MariaDB server per test suite (and for the benchmark): ephemeral port on 127.0.0.1,
 * data directory on tmpfs when possible, TLS with a self-signed certificate (its own CA), and a
 * database "app" with a table "items", a "customers" table for masking and users:
 *   - jg_native   mysql_native_password, privileges on app.*   (the gateway's stored credential)
 *   - jg_admin    can create and drop users and grant app.* roles (ephemeral users)
 * Plain JS so that `npm run bench` can use it without a TypeScript build.
 */
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { freePort, harnessTmpDir } from './pg-harness.mjs';

const HOST = '127.0.0.1';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function spawnWatchdog(pidFile, dir) {
  const script = [
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done',
    'pid=$(cat "$2" 2>/dev/null) || pid=',
    'if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; sleep 2; kill -KILL "$pid" 2>/dev/null; fi',
    'rm -rf "$3"',
  ].join('\n');
  const child = spawn('sh', ['-c', script, 'jitgate-mariadb-watchdog', String(process.pid), pidFile, dir], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = connect({ host: HOST, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startMariadb(opts = {}) {
  const dir = mkdtempSync(join(harnessTmpDir(), 'jitgate-mariadb-'));
  chmodSync(dir, 0o755);
  const dataDir = join(dir, 'data');
  const socket = join(dir, 'mysqld.sock');
  const pidFile = join(dir, 'mysqld.pid');
  const certPath = join(dir, 'server.crt');
  const keyPath = join(dir, 'server.key');
  const small = ['--innodb-log-file-size=4M', '--innodb-buffer-pool-size=32M'];
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  chmodSync(keyPath, 0o644);
  execFileSync(
    'mariadb-install-db',
    ['--no-defaults', `--datadir=${dataDir}`, '--auth-root-authentication-method=socket', '--skip-test-db', '--user=root', ...small],
    { stdio: 'ignore', timeout: 60_000 },
  );
  const port = await freePort();
  const child = spawn(
    existsSync('/usr/sbin/mariadbd') ? '/usr/sbin/mariadbd' : 'mariadbd',
    [
      '--no-defaults',
      `--datadir=${dataDir}`,
      `--socket=${socket}`,
      `--pid-file=${pidFile}`,
      `--port=${port}`,
      `--bind-address=${HOST}`,
      '--user=root',
      '--skip-log-bin',
      '--skip-name-resolve',
      `--ssl-cert=${certPath}`,
      `--ssl-key=${keyPath}`,
      '--max-allowed-packet=256M',
      '--local-infile=1',
      '--innodb-flush-log-at-trx-commit=0',
      '--performance-schema=OFF',
      ...small,
      ...(opts.args ?? []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr.on('data', (d) => (log = (log + d.toString()).slice(-8000)));
  spawnWatchdog(pidFile, dir);
  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  while (!(await canConnect(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`mariadbd did not start: ${log}`);
    }
    await sleep(100);
  }
  const users = {
    native: { user: 'jg_native', password: randomBytes(9).toString('hex') },
    admin: { user: 'jg_admin', password: randomBytes(9).toString('hex') },
  };
  const root = (sql) =>
    execFileSync('mariadb', ['--no-defaults', `--socket=${socket}`, '-uroot', '--batch', '--skip-column-names', '-e', sql], {
      encoding: 'utf8',
      timeout: 30_000,
    });
  root(`
    CREATE DATABASE app;
    CREATE TABLE app.items (id INT PRIMARY KEY, name VARCHAR(100), price DECIMAL(10,2), created DATETIME);
    INSERT INTO app.items VALUES (1,'apple',1.50,'2026-01-02 03:04:05'),(2,'banana',0.25,'2026-02-03 04:05:06'),(3,'cherry',12.00,NULL);
    CREATE TABLE app.customers (id INT PRIMARY KEY, name VARCHAR(100), email VARCHAR(200), card VARCHAR(30), note TEXT);
    INSERT INTO app.customers VALUES (1,'Jane Doe','jane.doe@example.com','4111 1111 1111 1111','call 4111111111111111 later'),(2,'John Roe','john@example.org','5500 0000 0000 0004',NULL);
    CREATE TABLE app.blobs (id INT PRIMARY KEY, data LONGBLOB);
    CREATE USER '${users.native.user}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('${users.native.password}');
    GRANT ALL ON app.* TO '${users.native.user}'@'%';
    GRANT FILE ON *.* TO '${users.native.user}'@'%';
    CREATE USER '${users.admin.user}'@'%' IDENTIFIED BY '${users.admin.password}';
    GRANT ALL ON app.* TO '${users.admin.user}'@'%' WITH GRANT OPTION;
    GRANT CREATE USER, RELOAD, PROCESS, CONNECTION ADMIN ON *.* TO '${users.admin.user}'@'%' WITH GRANT OPTION;
    CREATE ROLE app_reader; GRANT SELECT ON app.* TO app_reader; GRANT app_reader TO '${users.admin.user}'@'%' WITH ADMIN OPTION;
  `);
  writeFileSync(join(dir, 'ready'), '');
  return {
    host: HOST,
    port,
    dir,
    socket,
    caPath: certPath,
    users,
    /** Runs SQL as root over the socket; returns the tab-separated output. */
    root,
    async cleanup() {
      child.kill('SIGTERM');
      const until = Date.now() + 10_000;
      while (child.exitCode === null && Date.now() < until) await sleep(50);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
