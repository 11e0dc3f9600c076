/**
 * A private, throwaway PostgreSQL server for tests and the benchmark.
 *
 * Plain JavaScript so that `bench/pgbench.mjs` can run it without a TypeScript build; the tests use it
 * through `test/support/pg-server.ts`. Types live in `./pg-harness.d.mts`.
 *
 * Each server gets its own temp directory (data dir, unix socket dir, self-signed TLS pair, log), an
 * ephemeral port on 127.0.0.1, SCRAM as the default auth method and a harness-written pg_hba.conf with
 * one role per auth method. initdb and postgres refuse to run as root: when this process is root, they
 * run as an unprivileged OS user (`postgres` if it exists, else `$JITGATE_PG_OS_USER`, else a system
 * user `jitgate-pg` created on the spot) through spawn()'s uid/gid, so the child pid is the postmaster.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  accessSync,
  chmodSync,
  constants as fsConstants,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const HOST = '127.0.0.1';
const SUPERUSER = 'postgres';
const DEFAULT_START_TIMEOUT_MS = 30_000;

/** The roles the harness creates, one per auth method, each with a known password. */
export const PG_USERS = Object.freeze({
  scram: { user: 'scram_user', password: 'scram-secret-1' },
  md5: { user: 'md5_user', password: 'md5-secret-2' },
  plain: { user: 'plain_user', password: 'plain-secret-3' },
  trust: { user: 'trust_user', password: 'trust-secret-4' },
  tls: { user: 'tls_user', password: 'tls-secret-5' },
});

// ---------------------------------------------------------------------------------------------
// Binaries and the OS user

let binDirCache;
/** Directory holding initdb/postgres/pg_ctl (PostgreSQL 15 preferred), or '' when they are on PATH. */
export function pgBinDir() {
  if (binDirCache !== undefined) return binDirCache;
  const candidates = [];
  if (process.env.JITGATE_PG_BIN) candidates.push(process.env.JITGATE_PG_BIN);
  candidates.push('/usr/lib/postgresql/15/bin');
  if (existsSync('/usr/lib/postgresql')) {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  }
  for (const dir of candidates) {
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))) return (binDirCache = dir);
  }
  const onPath = spawnSync('sh', ['-c', 'command -v initdb && command -v postgres'], { encoding: 'utf8' });
  if (onPath.status === 0) return (binDirCache = '');
  throw new Error(
    'PostgreSQL server binaries (initdb, postgres) not found: install postgresql-15 (Debian: apt-get install -y postgresql) or set JITGATE_PG_BIN',
  );
}

/** Absolute path of a PostgreSQL binary (initdb, postgres, pgbench, psql...). */
export function pgBin(name) {
  const dir = pgBinDir();
  if (dir && existsSync(join(dir, name))) return join(dir, name);
  return name;
}

let osUserCache;
/**
 * The OS identity server processes run as: `{ uid, gid, name }` of an unprivileged user when this
 * process is root, or null (run as ourselves) otherwise.
 */
export function serverOsUser() {
  if (osUserCache !== undefined) return osUserCache;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return (osUserCache = null);
  const lookup = (name) => {
    const u = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
    if (u.status !== 0 || g.status !== 0) return null;
    return { name, uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
  };
  const wanted = process.env.JITGATE_PG_OS_USER;
  if (wanted) {
    const user = lookup(wanted);
    if (!user) throw new Error(`JITGATE_PG_OS_USER=${wanted}: no such OS user`);
    return (osUserCache = user);
  }
  let user = lookup('postgres') ?? lookup('jitgate-pg');
  if (!user) {
    const r = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'jitgate-pg'], { encoding: 'utf8' });
    user = lookup('jitgate-pg');
    if (!user) throw new Error(`running as root and no unprivileged OS user for PostgreSQL: useradd failed: ${r.stderr}`);
  }
  return (osUserCache = user);
}

/** spawn() options that run a child as the server OS user (when we are root). */
export function asServerUser(options = {}) {
  const user = serverOsUser();
  if (!user) return options;
  return { ...options, uid: user.uid, gid: user.gid, env: { ...(options.env ?? process.env), USER: user.name, LOGNAME: user.name } };
}

/** Give a path we created to the server OS user (no-op unless root). */
export function chownToServerUser(path) {
  const user = serverOsUser();
  if (user) chownSync(path, user.uid, user.gid);
}

/** Run a command to completion (optionally as the server OS user); throws with its output on failure. */
export function runChecked(cmd, args, { asServer = false, cwd, env, timeoutMs = 60_000 } = {}) {
  const base = { cwd, env: env ?? process.env, encoding: 'utf8', timeout: timeoutMs };
  const r = spawnSync(cmd, args, asServer ? asServerUser(base) : base);
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}:\n${r.stdout}${r.stderr}`);
  }
  return r.stdout;
}

/** An ephemeral TCP port that is free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

let baseDirCache;
/**
 * Where server directories go: $JITGATE_PG_TMPDIR, else /dev/shm when it is a roomy tmpfs (a server
 * starts in ~0.3 s there instead of ~1.2 s on disk), else the OS temp dir.
 */
export function harnessTmpDir() {
  if (baseDirCache !== undefined) return baseDirCache;
  if (process.env.JITGATE_PG_TMPDIR) return (baseDirCache = process.env.JITGATE_PG_TMPDIR);
  try {
    const st = statfsSync('/dev/shm');
    if (st.bavail * st.bsize >= 2 * 1024 ** 3) {
      accessSync('/dev/shm', fsConstants.W_OK);
      return (baseDirCache = '/dev/shm');
    }
  } catch {
    /* no usable /dev/shm */
  }
  return (baseDirCache = tmpdir());
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Servers we started, so a crashing test process does not leave postmasters behind.

const live = new Set();
let exitHookInstalled = false;
function trackExit(server) {
  live.add(server);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const s of live) s._emergencyStop();
  });
}

/**
 * vitest ends its worker processes with SIGTERM (no 'exit' event) and SIGKILL after a timeout, so
 * 'exit' hooks are not enough: a detached watchdog shell per server waits for this process to
 * disappear, then stops whichever postmaster owns the data directory and removes the directory.
 */
function spawnWatchdog(dir, dataDir) {
  const script = [
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done',
    'pid=$(head -n 1 "$2/postmaster.pid" 2>/dev/null) || pid=',
    'if [ -n "$pid" ]; then kill -QUIT "$pid" 2>/dev/null; sleep 2; kill -KILL "$pid" 2>/dev/null; fi',
    'if [ -z "$4" ]; then rm -rf "$3"; fi',
  ].join('\n');
  const child = spawn('sh', ['-c', script, 'jitgate-pg-watchdog', String(process.pid), dataDir, dir, process.env.JITGATE_KEEP_PG ?? ''], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return child;
}

// ---------------------------------------------------------------------------------------------

function hbaConf() {
  const u = PG_USERS;
  return [
    '# Written by the jitgate test harness. First match wins.',
    'local   all  all                      trust',
    `hostssl all  ${u.tls.user}   127.0.0.1/32  scram-sha-256`,
    `host    all  ${u.tls.user}   127.0.0.1/32  reject`,
    `host    all  ${u.scram.user} 127.0.0.1/32  scram-sha-256`,
    `host    all  ${u.md5.user}   127.0.0.1/32  md5`,
    `host    all  ${u.plain.user} 127.0.0.1/32  password`,
    `host    all  ${u.trust.user} 127.0.0.1/32  trust`,
    'host    all  all            127.0.0.1/32  scram-sha-256',
    '',
  ].join('\n');
}

function quoteConf(value) {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `'${String(value).replace(/'/g, "''")}'`;
}

const lit = (s) => `'${s.replace(/'/g, "''")}'`;

function initdb(dataDir, workDir) {
  // The superuser password is replaced per server in _provision(); initdb just needs one for SCRAM.
  const pwfile = join(workDir, `pwfile-${randomBytes(4).toString('hex')}`);
  writeFileSync(pwfile, `${randomBytes(12).toString('hex')}\n`, { mode: 0o600 });
  chownToServerUser(pwfile);
  try {
    runChecked(
      pgBin('initdb'),
      [
        '-D',
        dataDir,
        '-U',
        SUPERUSER,
        `--pwfile=${pwfile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
        '--no-sync',
        '--no-instructions',
      ],
      { asServer: true, cwd: workDir, env: { ...process.env, TZ: 'UTC' } },
    );
  } finally {
    rmSync(pwfile, { force: true });
  }
}

/**
 * initdb takes ~2 s here; copying a pristine initdb output takes a fraction of that. The template is
 * shared between processes (vitest workers) through the temp dir, created once and atomically (rename),
 * never modified afterwards. JITGATE_PG_NO_TEMPLATE=1 runs initdb for every server.
 */
function createDataDir(dataDir, workDir) {
  if (process.env.JITGATE_PG_NO_TEMPLATE) return initdb(dataDir, workDir);
  const owner = serverOsUser()?.uid ?? process.getuid?.() ?? 0;
  const tag = (pgBinDir() || 'path').replace(/[^A-Za-z0-9]+/g, '_');
  const template = join(harnessTmpDir(), `jitgate-pg-template-v1-${tag}-${owner}`);
  try {
    if (!existsSync(join(template, 'PG_VERSION'))) {
      const staging = mkdtempSync(`${template}.tmp-`);
      chmodSync(staging, 0o755);
      chownToServerUser(staging);
      try {
        initdb(join(staging, 'data'), staging);
        try {
          renameSync(join(staging, 'data'), template);
        } catch {
          /* another process created it first */
        }
      } finally {
        rmSync(staging, { recursive: true, force: true });
      }
    }
    runChecked('cp', ['-a', template, dataDir]);
  } catch {
    rmSync(dataDir, { recursive: true, force: true });
    initdb(dataDir, workDir);
  }
}

/**
 * Start a private PostgreSQL server. See `pg-harness.d.mts` for the options and the returned API.
 */
export async function startPostgres(opts = {}) {
  const startTimeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const t0 = Date.now();
  const dir = mkdtempSync(join(harnessTmpDir(), 'jitgate-pg-'));
  chmodSync(dir, 0o755);
  const dataDir = join(dir, 'data');
  const socketDir = join(dir, 'run');
  const logPath = join(dir, 'postgres.log');
  const certPath = join(dir, 'server.crt');
  const keyPath = join(dir, 'server.key');
  const password = randomBytes(12).toString('hex');

  try {
    // TLS: a self-signed certificate for localhost/127.0.0.1; the certificate is its own CA.
    runChecked('openssl', [
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
    ]);
    chmodSync(keyPath, 0o600);
    chmodSync(certPath, 0o644);
    writeFileSync(logPath, '');
    mkdirSync(socketDir, { mode: 0o755 });
    for (const p of [dir, keyPath, certPath, logPath, socketDir]) chownToServerUser(p);
    createDataDir(dataDir, dir);

    const conf = {
      listen_addresses: HOST,
      unix_socket_directories: socketDir,
      ssl: 'on',
      ssl_cert_file: certPath,
      ssl_key_file: keyPath,
      password_encryption: 'scram-sha-256',
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      shared_buffers: '32MB',
      max_connections: 60,
      max_wal_size: '256MB',
      log_min_messages: 'warning',
      log_line_prefix: '%m [%p] %q%u@%d ',
      log_connections: 'off',
      // DSM segments in the data dir (not /dev/shm), so an immediate stop leaves nothing behind.
      dynamic_shared_memory_type: 'mmap',
      ...(opts.conf ?? {}),
    };
    const confText = Object.entries(conf)
      .map(([k, v]) => `${k} = ${quoteConf(v)}`)
      .join('\n');
    // `port` goes on the command line (it may change if the first choice is taken meanwhile).
    writeFileSync(
      join(dataDir, 'postgresql.conf'),
      `${readFileSync(join(dataDir, 'postgresql.conf'), 'utf8')}\n# jitgate harness\n${confText}\n`,
    );
    writeFileSync(join(dataDir, 'pg_hba.conf'), opts.hba ?? hbaConf());
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const server = new PgServerImpl({
    dir,
    dataDir,
    socketDir,
    logPath,
    certPath,
    keyPath,
    password,
    startTimeoutMs,
    cpuAffinity: opts.cpuAffinity,
  });
  server._watchdog = spawnWatchdog(dir, dataDir);
  try {
    await server.start();
    await server._provision();
  } catch (err) {
    await server.cleanup().catch(() => {});
    throw err;
  }
  server.startupMs = Date.now() - t0;
  return server;
}

class PgServerImpl {
  constructor(o) {
    this.host = HOST;
    this.port = 0;
    this.superuser = SUPERUSER;
    this.password = o.password;
    this.caPath = o.certPath;
    this.certPath = o.certPath;
    this.keyPath = o.keyPath;
    this.dir = o.dir;
    this.dataDir = o.dataDir;
    this.socketDir = o.socketDir;
    this.logPath = o.logPath;
    this.users = PG_USERS;
    this.database = 'app';
    this.startupMs = 0;
    this._startTimeoutMs = o.startTimeoutMs;
    this._cpuAffinity = o.cpuAffinity;
    this._child = null;
    this._exited = null;
    this._watchdog = null;
  }

  get pid() {
    return this._child?.pid ?? null;
  }

  get running() {
    return this._child !== null;
  }

  logText() {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  clientConfig(who = 'superuser', overrides = {}) {
    const cred = who === 'superuser' ? { user: this.superuser, password: this.password } : this.users[who];
    if (!cred) throw new Error(`unknown harness user ${who}`);
    return { host: this.host, port: this.port, database: this.database, user: cred.user, password: cred.password, ...overrides };
  }

  /** pg client config for the superuser over the unix socket (trust; no SCRAM round trips). */
  _socketConfig(database) {
    return { host: this.socketDir, port: this.port, user: this.superuser, database, connectionTimeoutMillis: 5_000 };
  }

  async query(sql, params, opts = {}) {
    const client = new pg.Client(this._socketConfig(opts.database ?? this.database));
    client.on('error', () => {});
    await client.connect();
    try {
      return await client.query(sql, params);
    } finally {
      await client.end().catch(() => {});
    }
  }

  async start() {
    if (this._child) return;
    // The port stays the same across restarts once chosen; a first start retries on a bind race.
    const fixedPort = this.port !== 0;
    for (let attempt = 1; ; attempt++) {
      if (!fixedPort) this.port = await freePort();
      try {
        await this._spawnAndWait();
        return;
      } catch (err) {
        const bindRace = /could not bind|could not create any TCP\/IP sockets|Address already in use/i.test(String(err?.message));
        if (fixedPort || !bindRace || attempt >= 3) throw err;
      }
    }
  }

  async _spawnAndWait() {
    const logFd = openSync(this.logPath, 'a');
    const logStart = this.logText().length;
    const args = ['-D', this.dataDir, '-p', String(this.port)];
    const [cmd, argv] =
      this._cpuAffinity !== undefined
        ? ['taskset', ['-c', String(this._cpuAffinity), pgBin('postgres'), ...args]]
        : [pgBin('postgres'), args];
    let child;
    try {
      child = spawn(cmd, argv, asServerUser({ cwd: this.dir, stdio: ['ignore', logFd, logFd], env: { ...process.env, TZ: 'UTC' } }));
    } finally {
      closeSync(logFd);
    }
    this._child = child;
    trackExit(this);
    let exitInfo = null;
    this._exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        exitInfo = { code, signal };
        if (this._child === child) this._child = null;
        resolve(exitInfo);
      });
      child.once('error', (err) => {
        exitInfo = { code: null, signal: null, error: err };
        if (this._child === child) this._child = null;
        resolve(exitInfo);
      });
    });

    const deadline = Date.now() + this._startTimeoutMs;
    let lastErr = null;
    while (Date.now() < deadline) {
      if (exitInfo) {
        throw new Error(
          `PostgreSQL exited during startup (${exitInfo.error?.message ?? exitInfo.code ?? exitInfo.signal}):\n${this.logText().slice(logStart)}`,
        );
      }
      const client = new pg.Client({ ...this._socketConfig('postgres'), connectionTimeoutMillis: 1_000 });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query('SELECT 1');
        await client.end();
        return;
      } catch (err) {
        lastErr = err;
        await client.end().catch(() => {});
      }
      await sleep(50);
    }
    child.kill('SIGKILL');
    await this._exited;
    throw new Error(
      `PostgreSQL did not accept connections within ${this._startTimeoutMs} ms (last error: ${lastErr?.message}):\n${this.logText().slice(logStart)}`,
    );
  }

  async _provision() {
    const u = this.users;
    await this.query(
      [
        `ALTER ROLE ${this.superuser} PASSWORD ${lit(this.password)}`,
        `CREATE ROLE ${u.scram.user} LOGIN PASSWORD ${lit(u.scram.password)}`,
        `CREATE ROLE ${u.plain.user} LOGIN PASSWORD ${lit(u.plain.password)}`,
        `CREATE ROLE ${u.trust.user} LOGIN PASSWORD ${lit(u.trust.password)}`,
        `CREATE ROLE ${u.tls.user} LOGIN PASSWORD ${lit(u.tls.password)}`,
        // md5 auth needs an md5-hashed stored password; with a SCRAM verifier the server would ask for SCRAM.
        `SET password_encryption = 'md5'`,
        `CREATE ROLE ${u.md5.user} LOGIN PASSWORD ${lit(u.md5.password)}`,
        `RESET password_encryption`,
      ].join(';\n'),
      undefined,
      { database: 'postgres' },
    );
    // CREATE DATABASE cannot share a (multi-statement, hence implicit) transaction.
    await this.query(`CREATE DATABASE app OWNER ${u.scram.user}`, undefined, { database: 'postgres' });
    await this.query(
      [
        'CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, payload text)',
        `INSERT INTO items (name, payload) VALUES ('alpha', 'first item'), ('beta', 'second item'), ('gamma', NULL), ('delta', repeat('x', 100)), ('epsilon', 'fifth item')`,
        `ALTER TABLE items OWNER TO ${u.scram.user}`,
        'GRANT ALL ON SCHEMA public TO PUBLIC',
        'GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC',
        'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO PUBLIC',
      ].join(';\n'),
    );
  }

  async stop({ mode = 'fast' } = {}) {
    const child = this._child;
    if (!child) return;
    const signal = mode === 'immediate' ? 'SIGQUIT' : mode === 'smart' ? 'SIGTERM' : 'SIGINT';
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    try {
      await this._exited;
    } finally {
      clearTimeout(timer);
    }
    live.delete(this);
  }

  async restart(opts = {}) {
    await this.stop(opts);
    await this.start();
  }

  async kill9Backend(filter = {}) {
    const where = ["backend_type = 'client backend'", 'pid <> pg_backend_pid()'];
    const params = [];
    if (filter.user) {
      params.push(filter.user);
      where.push(`usename = $${params.length}`);
    }
    if (filter.applicationName) {
      params.push(filter.applicationName);
      where.push(`application_name = $${params.length}`);
    }
    if (filter.pid) {
      params.push(filter.pid);
      where.push(`pid = $${params.length}`);
    }
    const { rows } = await this.query(`SELECT pid FROM pg_stat_activity WHERE ${where.join(' AND ')}`, params, { database: 'postgres' });
    const pids = rows.map((r) => Number(r.pid));
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    return pids;
  }

  async cleanup() {
    if (this._child) await this.stop({ mode: 'immediate' }).catch(() => {});
    live.delete(this);
    this._watchdog?.kill('SIGKILL');
    this._watchdog = null;
    if (process.env.JITGATE_KEEP_PG) {
      console.error(`[pg-harness] keeping ${this.dir}`);
      return;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last resort from process.on('exit'). */
  _emergencyStop() {
    try {
      this._child?.kill('SIGQUIT');
      if (!process.env.JITGATE_KEEP_PG) rmSync(this.dir, { recursive: true, force: true });
    } catch {
      /* ignore */
    }
  }
}
