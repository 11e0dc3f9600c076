/**
 * The `jitgate` command line. Commands are thin: they find the config and store, call the same
 * services the gateway uses, and print. Expected failures become one line on stderr and exit code 1.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/load.js';
import { CredentialError } from '../credentials/secret-store.js';
import { configCheck } from './commands/config-check.js';
import { secretsList, secretsRemove, secretsSet } from './commands/secrets.js';
import { serveCommand } from './commands/serve.js';
import { sessionsCommand } from './commands/sessions.js';
import { tokenCommand } from './commands/token.js';
import { CliError, processIo, type CliIo } from './io.js';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

const STORE_HELP = 'config file (default: $JITGATE_CONFIG, else ./jitgate.yaml, else the embedded default)';
const DATA_DIR_HELP = 'data directory of the embedded default, used when there is no config file (default .data)';

export function buildProgram(io: CliIo): Command {
  const program = new Command('jitgate');
  program
    .description('Just-in-time access gateway for PostgreSQL, MySQL and Redis')
    .version(packageVersion())
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError('(run jitgate help for usage)');

  program
    .command('serve')
    .description('run the gateway (the embedded default when there is no config file)')
    .option('-c, --config <file>', STORE_HELP)
    .option('-d, --data-dir <dir>', 'data directory (overrides dataDir from the config file)')
    .action((opts: { config?: string; dataDir?: string }) => serveCommand(io, opts));

  const config = program.command('config').description('work with the configuration file');
  config
    .command('check')
    .description('validate a config file and print a summary, or every problem with its position')
    .option('-c, --config <file>', 'config file (default: $JITGATE_CONFIG, else ./jitgate.yaml)')
    .action((opts: { config?: string }) => configCheck(io, opts));

  const secrets = program.command('secrets').description('the encrypted secret store (master key: $JITGATE_MASTER_KEY)');
  secrets
    .command('set')
    .description('store a secret; the value is read from standard input, never from the command line')
    .argument('<name>', 'secret name, referenced in the config as secret:NAME')
    .option('-c, --config <file>', STORE_HELP)
    .option('-d, --data-dir <dir>', DATA_DIR_HELP)
    .allowExcessArguments(true)
    .action((name: string, opts: { config?: string; dataDir?: string }, cmd: Command) => {
      if (cmd.args.length > 1) {
        throw new CliError('secret values are read from standard input, never from the command line (they would end up in shell history)');
      }
      return secretsSet(io, name, opts);
    });
  secrets
    .command('list')
    .description('list secret names and when they were last set (never values)')
    .option('-c, --config <file>', STORE_HELP)
    .option('-d, --data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print JSON')
    .action((opts: { config?: string; dataDir?: string; json?: boolean }) => secretsList(io, opts));
  secrets
    .command('rm')
    .description('remove a secret')
    .argument('<name>')
    .option('-c, --config <file>', STORE_HELP)
    .option('-d, --data-dir <dir>', DATA_DIR_HELP)
    .action((name: string, opts: { config?: string; dataDir?: string }) => secretsRemove(io, name, opts));

  program
    .command('token')
    .description('mint an access token on the gateway host (admin); prints only the token on stdout')
    .requiredOption('-u, --user <user>', 'login name the token is for')
    .requiredOption('--connection <name>', 'connection the token opens (the database name clients use)')
    .option('--ttl <duration>', 'lifetime, e.g. 15m or 1h (default: auth.tokenTtl from the config, 15m; at most 24h)')
    .option('-c, --config <file>', STORE_HELP)
    .option('-d, --data-dir <dir>', DATA_DIR_HELP)
    .action((opts: { user: string; connection: string; ttl?: string; config?: string; dataDir?: string }) =>
      tokenCommand(io, opts),
    );

  program
    .command('sessions')
    .description('list sessions, newest first')
    .option('-u, --user <user>', 'only this user')
    .option('--connection <name>', 'only this connection')
    .option('--active', 'only sessions still open')
    .option('--json', 'print JSON')
    .option('-n, --limit <n>', 'at most this many (default 50)')
    .option('-c, --config <file>', STORE_HELP)
    .option('-d, --data-dir <dir>', DATA_DIR_HELP)
    .action((opts) => sessionsCommand(io, opts));

  return program;
}

/** Run the CLI with `args` (without node and the script); resolves to the process exit code. */
export async function runCli(args: string[], io: CliIo = processIo()): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(args, { from: 'user' });
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}

function reportError(io: CliIo, err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode; // commander has printed its message
  if (err instanceof ConfigError) {
    io.err(err.message + '\n');
    return 1;
  }
  if (err instanceof CliError || err instanceof CredentialError) {
    io.err(`jitgate: ${err.message}\n`);
    return 1;
  }
  const e = err as Error;
  io.err(`jitgate: unexpected error: ${e?.message ?? String(err)}\n`);
  if (io.env.JITGATE_DEBUG) io.err(`${e?.stack ?? ''}\n`);
  else io.err('(set JITGATE_DEBUG=1 for the stack trace)\n');
  return 1;
}
