import { spawn } from 'node:child_process';

export interface PsqlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real psql with `args`, a password in the environment and optional stdin; bounded in time. */
export function psql(
  dsn: string,
  password: string,
  args: string[],
  options: { input?: string; timeoutMs?: number; onSpawn?: (pid: number) => void } = {},
): Promise<PsqlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', [dsn, '-X', '-v', 'ON_ERROR_STOP=1', ...args], {
      env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10', PGAPPNAME: 'jitgate-test' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (child.pid) options.onSpawn?.(child.pid);
    child.stdin.end(options.input ?? '');
  });
}
