/**
 * The recording and audit verbs: sessions (search, legal holds), replay, kill, audit verify/export.
 * `sessions`, `replay` and `audit` work on the gateway host's store and recordings; `kill` (and
 * `replay --remote`) go through the running gateway's API as the signed-in user.
 */
import type { Command } from 'commander';
import { auditExportCommand, auditPublicKeyCommand, auditVerifyCommand } from './commands/audit.js';
import { killCommand } from './commands/kill.js';
import { replayCommand, type ReplayOptions } from './commands/replay.js';
import { holdCommand, sessionsCommand, unholdCommand, type SessionsOptions } from './commands/sessions.js';
import type { CliIo } from './io.js';

const STORE_HELP = 'config file (default: $JITGATE_CONFIG, else ./jitgate.yaml, else the embedded default)';
const DATA_DIR_HELP = 'data directory of the embedded default, used when there is no config file (default .data)';
const TIME = 'ISO time, epoch ms, or a duration ago (2h, 7d)';

export function registerRecordingCommands(program: Command, io: CliIo): void {
  const sessions = program
    .command('sessions')
    .description('list sessions, newest first (filters combine); hold/unhold: legal holds on recordings')
    .option('-u, --user <user>', 'only this user')
    .option('--connection <name>', 'only this connection')
    .option('--since <time>', `only sessions active at or after this time (${TIME})`)
    .option('--until <time>', `only sessions active at or before this time (${TIME})`)
    .option('--status <status>', 'only live or ended sessions')
    .option('--active', 'only sessions still open (same as --status live)')
    .option('--statement <text>', 'only sessions that ran a statement containing this text (case-insensitive)')
    .option('--json', 'print JSON')
    .option('-n, --limit <n>', 'at most this many (default 50)')
    .option('-c, --config <file>', STORE_HELP)
    .option('-d, --data-dir <dir>', DATA_DIR_HELP)
    .action((opts: SessionsOptions) => sessionsCommand(io, opts));
  sessions
    .command('hold')
    .description('put the recording of a session on legal hold: retention will not delete it (audited)')
    .argument('<session>', 'session id, or a unique prefix of it')
    .requiredOption('-r, --reason <text>', 'why it must be kept (e.g. the case or ticket)')
    .option('-c, --config <file>', STORE_HELP)
    .option('-d, --data-dir <dir>', DATA_DIR_HELP)
    // --config/--data-dir may be parsed by `sessions` itself: take them from there too.
    .action((id: string, _opts: unknown, cmd: Command) => holdCommand(io, id, cmd.optsWithGlobals()));
  sessions
    .command('unhold')
    .description('release a legal hold (audited); retention applies again')
    .argument('<session>', 'session id, or a unique prefix of it')
    .option('-r, --reason <text>', 'why the hold ends')
    .option('-c, --config <file>', STORE_HELP)
    .option('-d, --data-dir <dir>', DATA_DIR_HELP)
    .action((id: string, _opts: unknown, cmd: Command) => unholdCommand(io, id, cmd.optsWithGlobals()));

  program
    .command('replay')
    .description('print a session as a transcript, as the psql session looked (instantly; --follow: at recorded speed, then live)')
    .argument('<session>', 'session id, or a unique prefix of it')
    .option('--json', 'print the recorded events, one JSON object per line')
    .option('-f, --follow', 'replay at recorded speed and keep following a live session until it ends')
    .option('--speed <factor>', 'with --follow: faster (2) or slower (0.5) than recorded')
    .option('--remote', "through the gateway's API as the signed-in user (auditors, admins, the session's own user)")
    .option('-c, --config <file>', STORE_HELP)
    .option('-d, --data-dir <dir>', DATA_DIR_HELP)
    .action((id: string, opts: ReplayOptions) => replayCommand(io, id, opts));

  program
    .command('kill')
    .description('end a live session now, through the running gateway (admins, or your own session); recorded and audited')
    .argument('<session>', 'session id, or a unique prefix of it')
    .requiredOption('-r, --reason <text>', 'why (the user sees it)')
    .action((id: string, opts: { reason: string }) => killCommand(io, id, opts));

  const audit = program.command('audit').description('the tamper-evident audit log');
  audit
    .command('verify')
    .description('recompute the hash chain and check the signed checkpoints; names the first entry that does not verify')
    .option('--file <export>', 'verify an export (jitgate audit export) offline instead of the store')
    .option('--public-key <file>', 'trust this signing key (PEM, or base64 as printed by audit public-key)')
    .option('--recordings', 'also check every kept recording against the digest recorded when its session ended')
    .option('--json', 'print JSON')
    .option('-c, --config <file>', STORE_HELP)
    .option('-d, --data-dir <dir>', DATA_DIR_HELP)
    .action((opts: { file?: string; publicKey?: string; recordings?: boolean; json?: boolean; config?: string; dataDir?: string }) =>
      auditVerifyCommand(io, opts),
    );
  audit
    .command('export')
    .description('print audit entries as JSON lines (with their chain hashes, for offline verification or a SIEM)')
    .option('--since <time>', `only entries at or after this time (${TIME})`)
    .option('--format <format>', 'jsonl (the only format)', 'jsonl')
    .option('-c, --config <file>', STORE_HELP)
    .option('-d, --data-dir <dir>', DATA_DIR_HELP)
    .action((opts: { since?: string; format?: string; config?: string; dataDir?: string }) => auditExportCommand(io, opts));
  audit
    .command('public-key')
    .description("print the audit signing key's public half (base64) to pin for offline verification")
    .option('-c, --config <file>', STORE_HELP)
    .option('-d, --data-dir <dir>', DATA_DIR_HELP)
    .action((opts: { config?: string; dataDir?: string }) => auditPublicKeyCommand(io, opts));
}
