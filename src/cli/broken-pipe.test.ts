/**
 * A reader that closes the pipe early (`jitgate replay ID | head`) ends the CLI quietly, with no
 * stack trace: a real child process writes far more than a pipe holds to a stdout whose reader
 * has gone.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const MODULE = pathToFileURL(join(ROOT, 'src/cli/broken-pipe.ts')).href;

function writeUntilTheReaderLeaves(guarded: boolean): Promise<{ code: number | null; stderr: string }> {
  const script = [
    guarded
      ? `const { endQuietlyOnBrokenPipe } = await import(${JSON.stringify(MODULE)}); endQuietlyOnBrokenPipe(process.stdout, (c) => process.exit(c));`
      : '',
    // Bounded: 20,000 lines of 100 bytes, far more than a pipe buffers.
    "const line = 'x'.repeat(99) + '\\n'; let i = 0; const more = () => { while (i < 20000) { i++; if (!process.stdout.write(line)) { process.stdout.once('drain', more); return; } } }; more();",
  ].join('\n');
  const child = spawn(process.execPath, ['--import', TSX, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // Like `head`: read a little, then close the pipe.
  child.stdout.once('data', () => child.stdout.destroy());
  return new Promise((done) => child.on('close', (code) => done({ code, stderr })));
}

it('ends with status 0 and nothing on stderr when the reader closes the pipe', async () => {
  const { code, stderr } = await writeUntilTheReaderLeaves(true);
  expect(stderr).toBe('');
  expect(code).toBe(0);
}, 60_000);

it('without the guard, Node reports the broken pipe as an error (what users saw)', async () => {
  const { code, stderr } = await writeUntilTheReaderLeaves(false);
  expect(stderr).toContain('EPIPE');
  expect(code).not.toBe(0);
}, 60_000);
