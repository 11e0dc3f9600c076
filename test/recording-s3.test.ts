/**
 * Recordings on object storage end to end: a real PostgreSQL, psql, a real S3-compatible server
 * (s3rver, ./support/s3-server.ts) and the gateway configured with `recording.storage.type: s3`.
 *
 *  - a finished session's recording is uploaded with its digest and leaves the disk; replay, the
 *    API and `audit verify --recordings` read it from the bucket; a changed object is caught;
 *    retention deletes the object and audits it;
 *  - while the object store is down a recording waits on the disk, /readyz and the audit log say
 *    so, and it goes up once the store is back;
 *  - a gateway killed with -9 leaves a live recording and a finished one not yet uploaded; the next
 *    gateway on its disk closes the first and uploads both.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken } from './support/admin-token.js';
import { loadConfig } from '../src/config/load.js';
import { ManualClock, type Clock } from '../src/core/clock.js';
import type { Identity } from '../src/core/types.js';
import { startGateway, type Gateway } from '../src/main.js';
import { createLogger } from '../src/obs/log.js';
import type { S3StorageConfig } from '../src/config/recording.js';
import type { SessionListing, RecordingRow } from '../src/recording/repository.js';
import { S3Objects } from '../src/recording/s3-objects.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { writeProcessConfig } from './support/process-config.js';
import { psql } from './support/psql.js';
import { cli, filesUnder } from './support/recording.js';
import { S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, startS3Server, type S3Server } from './support/s3-server.js';
import { waitUntil } from './support/wait.js';
import { collect } from './support/collect.js';

const ENV = { S3_KEY_ID: S3_ACCESS_KEY_ID, S3_SECRET: S3_SECRET_ACCESS_KEY };
const PREFIX = 'gw/';
const DAY = 86_400_000;

let server: PgServer;
let s3: S3Server;
let objects: S3Objects;
const dirs: string[] = [];

beforeAll(async () => {
  [server, s3] = await Promise.all([startPostgres(), startS3Server({ bucket: 'recordings' })]);
  const storage: S3StorageConfig = {
    type: 's3',
    bucket: s3.bucket,
    prefix: PREFIX,
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: null,
  };
  objects = new S3Objects(storage, { accessKeyId: S3_ACCESS_KEY_ID, secretAccessKey: S3_SECRET_ACCESS_KEY });
});
afterAll(async () => {
  objects?.close();
  await Promise.all([server?.cleanup(), s3?.stop()]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A config file with recordings on the test's S3 server, credentials from the environment. */
function writeConfig(bucket = s3.bucket): { dir: string; configPath: string } {
  const dir = mkdtempSync(join(tmpdir(), 'jitgate-s3rec-'));
  dirs.push(dir);
  const configPath = writeProcessConfig(dir, server, {
    drainTimeout: '2s',
    extraYaml: `recording:
  retention: 1d
  retentionCheck: 1h
  storage:
    type: s3
    bucket: ${bucket}
    prefix: ${PREFIX}
    endpoint: ${s3.endpoint}
    credentials: { accessKeyId: env:S3_KEY_ID, secretAccessKey: env:S3_SECRET }
audit:
  auditors: [auditors]
`,
  });
  return { dir, configPath };
}

async function start(configPath: string, clock?: Clock): Promise<Gateway> {
  const config = await loadConfig(configPath);
  return startGateway(config, { env: ENV, logger: createLogger({ level: 'silent' }), ...(clock ? { clock } : {}) });
}

async function tokenFor(gateway: Gateway, now: number): Promise<string> {
  return (await adminToken(gateway, { connection: 'app', now })).token;
}

async function psqlSession(gateway: Gateway, token: string, input: string, app: string): Promise<void> {
  const address = gateway.addresses.postgres!;
  const port = address.slice(address.lastIndexOf(':') + 1);
  const r = await psql(`host=127.0.0.1 port=${port} user=alice dbname=app sslmode=disable application_name=${app}`, token, [], { input });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

type Settled = SessionListing & { recording: RecordingRow & { location: string } };
function settled(gateway: Gateway, app: string): Promise<Settled> {
  return waitUntil(`the recording of ${app} to be closed`, () => {
    const s = gateway.recording.repo.search({ limit: 50 }).find((x) => x.applicationName === app);
    return s?.recording?.endedAt != null && s.recording.state !== 'recording' && s.recording.location ? (s as Settled) : undefined;
  });
}

function uploaded(location: string, digest: string | null): Promise<true> {
  return waitUntil(
    `the object of ${location}`,
    async () => (await objects.head(location))?.metadata['chain-digest'] === digest || undefined,
    {
      timeoutMs: 15_000,
    },
  );
}

async function readyz(gateway: Gateway): Promise<{ details: { recordingUploads: Record<string, unknown> } }> {
  return (await fetch(`${gateway.addresses.http}/readyz`)).json() as never;
}

/** What someone with write access to the bucket does: replaces an object's bytes. */
async function replaceObject(objects: S3Objects, location: string, bytes: Buffer, metadata: Record<string, string>): Promise<void> {
  const file = join(mkdtempSync(join(tmpdir(), 'jitgate-forged-')), 'object');
  writeFileSync(file, bytes);
  await objects.putFile(location, file, metadata);
  rmSync(file);
}

describe('recordings on S3-compatible object storage', () => {
  it('uploads a finished session, reads it from the bucket for replay, the API and audit verify, and lets retention delete it', async () => {
    const { dir, configPath } = writeConfig();
    const clock = new ManualClock(Date.now());
    const gateway = await start(configPath, clock);
    try {
      const auditor: Identity = { user: 'audrey', groups: ['auditors'], kind: 'human', via: 'test' };
      gateway.router.setAuthenticator((req) => (req.headers.authorization === 'Bearer test:audrey' ? auditor : null));
      await psqlSession(gateway, await tokenFor(gateway, clock.now()), "select 'kept in the bucket' as where_it_is;\n", 'first');
      const s = await settled(gateway, 'first');
      const { location, digest } = s.recording;
      expect(location).toMatch(/^\d{4}\/\d\d\/\d\d\/[\w-]+\.jsonl\.gz$/);
      await uploaded(location, digest);
      // Nothing left on the gateway's disk.
      await waitUntil('the local file to go', () => filesUnder(join(dir, 'data', 'recordings')).length === 0);
      expect((await readyz(gateway)).details.recordingUploads).toEqual({ pending: 0, failing: 0, oldestFailureAt: null, lastError: null });

      const replay = await cli(['replay', s.id, '--config', configPath], ENV);
      expect(replay.err).toBe('');
      expect(replay.out).toContain("app=> select 'kept in the bucket' as where_it_is;\n");
      expect(replay.out).toContain('\n kept in the bucket\n(1 row)\n');

      const res = await fetch(`${gateway.addresses.http}/api/sessions/${s.id}/events`, {
        headers: { authorization: 'Bearer test:audrey' },
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { events: Array<{ type: string }>; verification: { ok: boolean } };
      expect(body.verification.ok).toBe(true);
      expect(body.events.at(-1)!.type).toBe('session_end');

      const verify = await cli(['audit', 'verify', '--recordings', '--config', configPath], ENV);
      expect(verify.err).toBe('');
      expect(verify.out).toMatch(/\nrecordings verified: 1, each chain intact and ending at its recorded digest\n/);
      expect(verify.code).toBe(0);

      // Someone with write access to the bucket changes what was said.
      const stored = (await objects.get(location))!;
      const forged = gunzipSync(stored.body).toString('utf8').replace('kept in the bucket', 'nothing to see here');
      await replaceObject(objects, location, gzipSync(forged), stored.metadata);
      const caught = await cli(['audit', 'verify', '--recordings', '--config', configPath], ENV);
      expect(caught.code).toBe(1);
      expect(caught.out).toContain(`recording of session ${s.id} does NOT verify`);
      await replaceObject(objects, location, stored.body, stored.metadata);

      // Past its retention the object goes, and the deletion is audited.
      clock.advance(DAY + 2 * 3_600_000);
      await waitUntil('retention to delete the object', async () => (await objects.head(location)) === undefined);
      const deleted = (await collect(gateway.audit.entries())).filter((e) => e.type === 'recording.deleted');
      expect(deleted.map((e) => e.subject)).toEqual([s.id]);
      expect((await cli(['replay', s.id, '--config', configPath], ENV)).err).toMatch(/was deleted by retention at/);
    } finally {
      await gateway.close();
    }
  });

  it('keeps a recording on the disk while the object store is down, reports it, and uploads it once the store is back', async () => {
    const { dir, configPath } = writeConfig();
    const gateway = await start(configPath);
    try {
      await s3.pause();
      let s: Settled;
      try {
        await psqlSession(gateway, await tokenFor(gateway, Date.now()), 'select 42 as answer;\n', 'outage');
        s = await settled(gateway, 'outage');
        const ready = await waitUntil('/readyz to report the failing upload', async () => {
          const r = await readyz(gateway);
          return r.details.recordingUploads.failing === 1 ? r : undefined;
        });
        expect(ready.details.recordingUploads).toMatchObject({
          pending: 1,
          lastError: expect.stringContaining(`s3://${s3.bucket}/${PREFIX}`),
        });
        // Readable all the while, from the disk.
        expect(filesUnder(join(dir, 'data', 'recordings'))).toEqual([join(dir, 'data', 'recordings', s.recording.location)]);
        const replay = await cli(['replay', s.id, '--config', configPath], ENV);
        expect(replay.out).toContain(' answer \n--------\n     42\n(1 row)\n');
        expect((await gateway.audit.about(s.id)).map((e) => e.type)).toContain('recording.upload_failed');
        const metrics = await gateway.metrics.render();
        expect(metrics).toMatch(/^jitgate_recording_uploads_failing 1$/m);
      } finally {
        await s3.start();
      }
      await uploaded(s.recording.location, s.recording.digest);
      await waitUntil('the local file to go', () => filesUnder(join(dir, 'data', 'recordings')).length === 0);
      expect((await gateway.audit.about(s.id)).map((e) => e.type)).toContain('recording.uploaded');
      expect((await readyz(gateway)).details.recordingUploads).toMatchObject({ pending: 0, failing: 0 });
    } finally {
      await gateway.close();
    }
  });

  it('refuses to start on a bucket that does not exist or a refused key, and starts while the store is only down', async () => {
    await expect(start(writeConfig('no-such-bucket').configPath)).rejects.toThrow(
      /^recording\.storage: cannot reach bucket no-such-bucket at http:\/\/127\.0\.0\.1:\d+: NotFound \(HTTP 404\)/,
    );
    const { configPath } = writeConfig();
    const config = await loadConfig(configPath);
    await expect(
      startGateway(config, { env: { ...ENV, S3_KEY_ID: 'WRONG-KEY' }, logger: createLogger({ level: 'silent' }) }),
    ).rejects.toThrow(/^recording\.storage: cannot reach bucket recordings .*\(HTTP 403\)/);
    await s3.pause();
    try {
      const gateway = await start(configPath);
      await gateway.close();
    } finally {
      await s3.start();
    }
  });

  describe('a gateway killed with -9', () => {
    let child: ChildProcess | undefined;
    afterAll(() => child?.kill('SIGKILL'));

    it('leaves its recordings on the disk, and the next gateway there closes and uploads them', async () => {
      const { dir, configPath } = writeConfig();
      child = spawn(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'support/gateway-child.ts'), configPath, 'alice', 'app'],
        {
          env: { ...process.env, ...ENV },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child!.stdout! }).once('line', resolve);
        child!.once('exit', (code) => reject(new Error(`gateway child exited early (${code})`)));
      });
      const { postgres, token } = JSON.parse(line) as { postgres: string; token: string };
      const port = postgres.slice(postgres.lastIndexOf(':') + 1);
      const dsn = (app: string) => `host=127.0.0.1 port=${port} user=alice dbname=app sslmode=disable application_name=${app}`;
      const recordings = join(dir, 'data', 'recordings');

      // One session ends while the object store is down: sealed, waiting for its upload.
      await s3.pause();
      try {
        const ended = await psql(dsn('finished'), token, [], { input: 'select 1 as finished;\n' });
        expect(ended.code).toBe(0);
        await waitUntil('the finished recording to be sealed', () => filesUnder(recordings).some((f) => f.endsWith('.jsonl.gz')));
      } finally {
        await s3.start();
      }
      // Another is live when the process is killed.
      const live = psql(dsn('live'), token, [], { input: 'select 2 as live;\nselect pg_sleep(30);\n' });
      await waitUntil(
        'the live session to run pg_sleep',
        async () =>
          (await server.query("select 1 from pg_stat_activity where query = 'select pg_sleep(30);' and state = 'active'")).rowCount === 1,
      );
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      child = undefined;
      await live;
      expect(
        filesUnder(recordings)
          .map((f) => f.replace(/^.*\.jsonl/, '.jsonl'))
          .sort(),
      ).toEqual(['.jsonl', '.jsonl.gz']);

      const next = await start(configPath);
      try {
        const finished = await settled(next, 'finished');
        const recovered = await settled(next, 'live');
        // Closed at its last checkpoint, as any crashed session's recording is.
        expect(recovered.recording).toMatchObject({ state: 'failed', error: expect.stringContaining('crash') });
        await uploaded(finished.recording.location, finished.recording.digest);
        await uploaded(recovered.recording.location, recovered.recording.digest);
        await waitUntil('the local files to go', () => filesUnder(recordings).length === 0);
        const replay = await cli(['replay', recovered.id, '--config', configPath], ENV);
        expect(replay.out).toContain(' live \n------\n    2\n(1 row)\n');
        const verify = await cli(['audit', 'verify', '--recordings', '--config', configPath], ENV);
        expect(verify.out).toMatch(/\nrecordings verified: 2, each chain intact/);
        expect(verify.code).toBe(0);
      } finally {
        await next.close();
      }
    });
  });
});
