/**
 * `jitgate secrets set NAME | list | rm NAME`: the encrypted secret store. A value is read from
 * standard input (hidden and asked twice on a terminal, or piped), never from the command line, and
 * never printed.
 */
import { secretNameProblem } from '../../core/secret-ref.js';
import { CredentialError, SecretStore } from '../../credentials/secret-store.js';
import { adminTarget, withStore } from '../context.js';
import { formatTime, table } from '../format.js';
import { CliError, type CliIo } from '../io.js';

export interface StoreOptions {
  config?: string;
  dataDir?: string;
}

export async function secretsSet(io: CliIo, name: string, opts: StoreOptions): Promise<void> {
  const problem = secretNameProblem(name);
  if (problem) throw new CliError(`invalid secret name ${JSON.stringify(name)}: ${problem}`);
  const target = await adminTarget(io, opts);
  await withStore(target.storePath, async (store) => {
    const secrets = new SecretStore(store, { env: io.env, now: io.now });
    // Fail on a missing or wrong master key before asking for the value.
    await secrets.verifyMasterKey();
    const value = io.stdin.isTTY ? await readHiddenTwice(io, name) : await readPiped(io);
    await secrets.set(name, value);
  });
  io.out(`secret ${name} stored\n`);
}

export async function secretsList(io: CliIo, opts: StoreOptions & { json?: boolean }): Promise<void> {
  const target = await adminTarget(io, opts);
  const rows = await withStore(target.storePath, (store) => new SecretStore(store, { env: io.env }).list());
  if (opts.json) {
    io.out(
      JSON.stringify(
        rows.map((r) => ({ name: r.name, updatedAt: new Date(r.updatedAt).toISOString() })),
        null,
        2,
      ) + '\n',
    );
    return;
  }
  if (rows.length === 0) {
    io.err('no secrets\n');
    return;
  }
  io.out(
    table(
      ['NAME', 'UPDATED'],
      rows.map((r) => [r.name, formatTime(r.updatedAt)]),
    ),
  );
}

export async function secretsRemove(io: CliIo, name: string, opts: StoreOptions): Promise<void> {
  const target = await adminTarget(io, opts);
  const removed = await withStore(target.storePath, (store) => new SecretStore(store, { env: io.env }).delete(name));
  if (!removed) throw new CliError(`no secret named ${name}`);
  io.out(`secret ${name} removed\n`);
}

/** Everything on a piped stdin, less one trailing newline. */
async function readPiped(io: CliIo): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  const value = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (value === '') throw new CliError('no value on standard input (pipe it in, e.g. printf %s "$PASSWORD" | jitgate secrets set NAME)');
  return value;
}

async function readHiddenTwice(io: CliIo, name: string): Promise<string> {
  const first = await readHidden(io, `Value for secret ${name}: `);
  if (first === '') throw new CliError('empty value; nothing stored');
  const second = await readHidden(io, 'Repeat the value: ');
  if (first !== second) throw new CliError('the two values differ; nothing stored');
  return first;
}

/** Read one line from a terminal in raw mode without echoing it. */
function readHidden(io: CliIo, prompt: string): Promise<string> {
  const stdin = io.stdin;
  if (!stdin.setRawMode) throw new CredentialError('standard input is a terminal without raw mode; pipe the value in instead');
  io.err(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (err?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      io.err('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer | string) => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        if (ch === '\u0003') return finish(new CliError('cancelled; nothing stored'));
        if (ch === '\u007f' || ch === '\b') {
          value = [...value].slice(0, -1).join('');
          continue;
        }
        if (ch < ' ') continue;
        value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
