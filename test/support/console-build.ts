/**
 * Vitest global setup: builds the web console (web/ -> dist/console) when it is missing or older
 * than its sources, so the suite works on a clean clone and always tests the current console.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

function newest(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((f) => newest(join(path, f))));
}

export default function setup(): void {
  const built = join(root, 'dist/console/index.html');
  const sources = Math.max(newest(join(root, 'web/src')), newest(join(root, 'web/index.html')), newest(join(root, 'web/vite.config.ts')));
  if (existsSync(built) && statSync(built).mtimeMs >= sources) return;
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'],
    {
      cwd: root,
      stdio: 'inherit',
      timeout: 300_000,
    },
  );
}
