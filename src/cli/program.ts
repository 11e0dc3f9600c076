/**
 * The `jitgate` command line. Commands are thin: they find the config and store, call the same
 * services the gateway uses, and print. Expected failures become one line on stderr and exit code 1.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/load.js';
import { CredentialError } from '../credentials/secret-store.js';
import { registerAccessCommands } from './access-program.js';
import { registerRecordingCommands } from './recording-program.js';
import { apikeyCreate, apikeyList, apikeyRevoke } from './commands/apikey.js';
import { caCommand } from './commands/ca.js';
import { configCheck } from './commands/config-check.js';
import { credentialsRotate, credentialsStatus } from './commands/credentials.js';
import { loginCommand, logoutCommand } from './commands/login.js';
import { maskingReportCommand, type MaskingReportOptions } from './commands/masking-report.js';
import { policyTestCommand, type PolicyTestOptions } from './commands/policy.js';
import { secretsList, secretsRemove, secretsSet } from './commands/secrets.js';
import { serveCommand } from './commands/serve.js';
import { tokenCommand } from './commands/token.js';
import { CliError, processIo, terminalSafe, type CliIo } from './io.js';
import { packageVersion } from '../core/version.js';

const STORE_HELP = 'config file (default: $JITGATE_CONFIG, else ./jitgate.yaml, else the embedded default)';
const DATA_DIR_HELP = 'data directory of the embedded default, used when there is no config file (default .data)';

export function buildProgram(io: CliIo): Command {
  const program = new Command('jitgate');
  program
    .description('Just-in-time access gateway for PostgreSQL, MySQL and Redis')
    .version(packageVersion())
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError('(run jitgate help for usage)')
    .option(
      '--profile <name>',
      'which saved sign-in to use (default: $JITGATE_PROFILE, else "default"), e.g. to approve as bob while signed in as alice',
    )
    // Every command finds the sign-in through io.env, so the flag speaks through the same variable.
    .hook('preAction', () => {
      const profile = program.opts<{ profile?: string }>().profile;
      if (profile !== undefined) io.env.JITGATE_PROFILE = profile;
    });

  program
    .command('serve')
    .description('run the gateway (the embedded default when there is no config file)')
    .option('-c, --config <file>', STORE_HELP)
    .option('-d, --data-dir <dir>', 'data directory (overrides dataDir from the config file)')
    .option('-w, --workers <n>', 'gateway processes sharing the listeners, e.g. one per core (needs a config file)', '1')
    .action((opts: { config?: string; dataDir?: string; workers?: string }) => serveCommand(io, opts));

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

  const credentials = program
    .command('credentials')
    .description("the gateway's own backend passwords (admins, through the running gateway)");
  credentials
    .command('rotate')
    .description("change the gateway's backend password on a connection now: a new random one only the gateway knows")
    .argument('<connection>', 'connection whose backend password to rotate')
    .action((connection: string) => credentialsRotate(io, connection));
  credentials
    .command('status')
    .description(
      'per connection: how the gateway logs in, when its password was rotated and is next due, privileges beyond what sessions need',
    )
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => credentialsStatus(io, opts));

  program
    .command('token')
    .description(
      'mint an access token under your grant (signed in), or with --user on the gateway host as an admin ' +
        '(an admin-issued grant is recorded); prints only the token on stdout',
    )
    .argument('[connection]', 'connection the token opens (the database name clients use)')
    .option('-u, --user <user>', 'admin on the gateway host: login name the token is for')
    .option('--connection <name>', 'connection the token opens (same as the argument)')
    .option('--ttl <duration>', 'with --user: lifetime, e.g. 15m or 1h (default: auth.tokenTtl from the config, 15m; at most 24h)')
    .option(
      '--groups <list>',
      "with --user: the person's groups, comma-separated (recorded in the audit log); default: the groups of their last sign-in",
    )
    .option('--no-groups', 'with --user: state that the person is in no group (recorded in the audit log)')
    .option('-c, --config <file>', STORE_HELP)
    .option('-d, --data-dir <dir>', DATA_DIR_HELP)
    .action(
      (
        connection: string | undefined,
        opts: { user?: string; connection?: string; ttl?: string; groups?: string | false; config?: string; dataDir?: string },
      ) => tokenCommand(io, { ...opts, connection: opts.connection ?? connection }),
    );

  registerIdentityCommands(program, io);
  registerAccessCommands(program, io);
  registerPolicyCommands(program, io);
  // sessions (search, legal holds), replay, kill, audit verify/export
  registerRecordingCommands(program, io);
  return program;
}

/** login, logout, apikey: signing in, and API keys for automation. */
function registerIdentityCommands(program: Command, io: CliIo): void {
  program
    .command('login')
    .description('sign in through the identity provider (browser with PKCE, or --device); the session refreshes silently')
    .option('--url <url>', 'gateway URL (default: $JITGATE_URL, else the last sign-in, else http://127.0.0.1:8080)')
    .option('--device', 'device flow: print a URL and a code to enter on any device with a browser')
    .option('--issuer <name>', 'which configured OIDC issuer (default: the first)')
    .option('--no-browser', 'do not try to open a browser; just print the URL')
    .action((opts: { url?: string; device?: boolean; issuer?: string; browser?: boolean }) => loginCommand(io, opts));

  program
    .command('ca')
    .description("print the gateway's TLS certificate, to verify its listeners (psql sslmode=verify-full sslrootcert=FILE)")
    .option('--save', "keep it beside the CLI's sign-in and print where (jitgate token then offers verify-full)")
    .option('--url <url>', 'gateway URL (default: $JITGATE_URL, else the last sign-in, else http://127.0.0.1:8080)')
    .action((opts: { save?: boolean; url?: string }) => caCommand(io, opts));

  program
    .command('logout')
    .description('end the sign-in at the gateway and remove the saved credentials')
    .action(() => logoutCommand(io));

  const apikey = program.command('apikey').description('API keys for automation (administrators)');
  apikey
    .command('create')
    .description('create an API key; prints only the key on stdout (shown once)')
    .requiredOption('--name <name>', 'name the key authenticates as (letters, digits, _ . -)')
    .option('--groups <a,b>', 'comma-separated groups the key has')
    .option('--ttl <duration>', 'lifetime, e.g. 30d or 12h (default 90d, at most 366d)')
    .action((opts: { name: string; groups?: string; ttl?: string }) => apikeyCreate(io, opts));
  apikey
    .command('list')
    .description('list API keys (never the keys themselves)')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => apikeyList(io, opts));
  apikey
    .command('revoke')
    .description('revoke an API key at once')
    .argument('<id>', 'key id, as shown by apikey list')
    .action((id: string) => apikeyRevoke(io, id));
}

/** policy test, masking report: reviewing policies through the running gateway's API. */
function registerPolicyCommands(program: Command, io: CliIo): void {
  const policy = program.command('policy').description('review policies (admins, approvers, auditors)');
  policy
    .command('test')
    .description('what the gateway would do with a statement (allowed, refused, held; masked columns and why), without running it')
    .argument('<statement>', 'SQL, or a Redis command line (split as redis-cli splits it)')
    .requiredOption('--connection <name>', 'connection the statement would run on')
    .requiredOption('-u, --user <user>', 'whose statement it is')
    .option('--groups <list>', "the user's groups, comma-separated (default: those of their last sign-in)")
    .option('--no-groups', 'the user is in no group')
    .option('--json', 'print JSON')
    .action((statement: string, opts: PolicyTestOptions) => policyTestCommand(io, statement, opts));

  const masking = program.command('masking').description('masking review');
  masking
    .command('report')
    .description(
      'what masking did (per rule and column, refused statements, detector-only columns), from the recordings (admins, auditors)',
    )
    .option('--since <time>', 'from this time: ISO time, epoch ms, or a duration ago (default 7d)')
    .option('--connection <name>', 'only this connection')
    .option('--limit <n>', 'read at most this many sessions, newest first (default 1000)')
    .option('--json', 'print JSON')
    .action((opts: MaskingReportOptions) => maskingReportCommand(io, opts));
}

/** Run the CLI with `args` (without node and the script); resolves to the process exit code. */
export async function runCli(args: string[], raw: CliIo = processIo()): Promise<number> {
  const io = terminalSafe(raw);
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
