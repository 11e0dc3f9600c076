/**
 * Best effort at opening a URL in the user's browser: $BROWSER when set, else xdg-open (Linux),
 * open (macOS) or start (Windows). Never fails and never waits: the URL is always printed as well,
 * for machines without a browser (SSH sessions, containers).
 */
import { spawn } from 'node:child_process';

export function openBrowser(url: string, env: NodeJS.ProcessEnv): boolean {
  const [command, ...args] = env.BROWSER
    ? [env.BROWSER]
    : process.platform === 'darwin'
      ? ['open']
      : process.platform === 'win32'
        ? ['cmd', '/c', 'start', '""']
        : ['xdg-open'];
  try {
    const child = spawn(command!, [...args, url], { stdio: 'ignore', detached: true, env });
    child.on('error', () => undefined);
    child.unref();
    return true;
  } catch {
    return false;
  }
}
