/**
 * A private S3-compatible server per test suite: s3rver (from the npm registry), a real HTTP server
 * speaking the S3 REST API and keeping objects in a directory, run as a child process on a loopback
 * port. Why this one: MinIO, Ceph's radosgw and moto are not installable here (no Debian package
 * that runs alone, nothing on npm), and a stub of the client would not show what the wire does.
 * It checks access key ids, not signatures: a test of credentials belongs to the real services.
 *
 *   const s3 = await startS3Server({ bucket: 'recordings' });
 *   afterAll(() => s3.stop());
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** s3rver's built-in credentials. */
export const S3_ACCESS_KEY_ID = 'S3RVER';
export const S3_SECRET_ACCESS_KEY = 'S3RVER';

export interface S3Server {
  endpoint: string;
  bucket: string;
  /** Where the server keeps buckets and objects. */
  dir: string;
  /** Stops the server, keeping its directory (start() brings it back on the same port). */
  pause(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const BIN = resolve(import.meta.dirname, '../../node_modules/s3rver/bin/s3rver.js');

export async function startS3Server(options: { bucket: string }): Promise<S3Server> {
  const dir = mkdtempSync(join(tmpdir(), 'jitgate-s3-'));
  let child: ChildProcess | undefined;
  let port = 0;

  const start = async (): Promise<void> => {
    const args = [BIN, '-d', dir, '-a', '127.0.0.1', '-p', String(port), '--configure-bucket', options.bucket, '--silent'];
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let output = '';
    port = await new Promise<number>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`s3rver did not start within 15 s: ${output}`)), 15_000);
      const seen = (chunk: Buffer) => {
        output += chunk.toString();
        const m = /listening on [\d.]+:(\d+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          ok(Number(m[1]));
        }
      };
      proc.stdout!.on('data', seen);
      proc.stderr!.on('data', seen);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        fail(new Error(`s3rver exited with ${code}: ${output}`));
      });
    });
  };

  const pause = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  };

  await start();
  return {
    get endpoint() {
      return `http://127.0.0.1:${port}`;
    },
    bucket: options.bucket,
    dir,
    pause,
    start,
    stop: async () => {
      await pause();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
