/**
 * The access verbs (request, requests, approve, deny, revoke, grants, whoami, connections, connect):
 * every one calls the gateway's API as the signed-in user (./api-client.ts).
 */
import type { Command } from 'commander';
import { connectCommand, type ConnectOptions } from './commands/connect.js';
import { connectionsCommand, grantsCommand, revokeCommand, whoamiCommand } from './commands/grants.js';
import { mcpCommand } from './commands/mcp.js';
import { requestCommand, type RequestOptions } from './commands/request.js';
import { approveCommand, denyCommand, requestsCommand } from './commands/requests.js';
import type { CliIo } from './io.js';

export function registerAccessCommands(program: Command, io: CliIo): void {
  program
    .command('whoami')
    .description('who the gateway knows you as: identity, groups and current grants')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => whoamiCommand(io, opts));

  program
    .command('mcp')
    .description("serve the gateway's MCP tools to a local agent over stdio, as you (or the API key in $JITGATE_TOKEN)")
    .action(() => mcpCommand(io));

  program
    .command('connections')
    .description('connections you can request, with your access to each')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => connectionsCommand(io, opts));

  program
    .command('request')
    .description('ask for access to a connection and wait for the decision')
    .argument('<connection>', 'connection name')
    .option('--for <duration>', 'how long, e.g. 30m or 4h (default: 1h, or the policy maximum if that is less)')
    .option('-r, --reason <text>', 'why you need access (sent to the approvers)')
    .option('--no-wait', 'return at once with the request id instead of waiting')
    .option('--timeout <duration>', 'stop waiting after this long (default: until the request expires)')
    .option('--break-glass', 'emergency: take access without approval where the policy allows it (reason mandatory, approvers notified)')
    .option('--json', 'print JSON')
    .action((connection: string, opts: RequestOptions) => requestCommand(io, connection, opts));

  program
    .command('requests')
    .description('your access requests, those you can approve, and statements held for approval')
    .option('--state <state>', 'only pending, granted, approved, denied, withdrawn or expired (approvable: pending by default)')
    .option('--json', 'print JSON')
    .action((opts: { state?: string; json?: boolean }) => requestsCommand(io, opts));

  program
    .command('approve')
    .description('approve an access request or a statement held for approval (id or a unique prefix of it)')
    .argument('<id>')
    .option('-m, --comment <text>', 'a comment for the record')
    .option('--break-glass', 'approve your own request in an emergency, where the policy allows it (--comment is the reason)')
    .action((id: string, opts: { comment?: string; breakGlass?: boolean }) => approveCommand(io, id, opts));

  program
    .command('deny')
    .description('deny an access request or a held statement (or withdraw your own)')
    .argument('<id>')
    .option('-r, --reason <text>', 'why (the requester sees it; required for access requests)')
    .option('-m, --comment <text>', 'the same, for a held statement: shown to its author in the error')
    .action((id: string, opts: { reason?: string; comment?: string }) => denyCommand(io, id, opts));

  program
    .command('grants')
    .description('your active grants, and those you may revoke')
    .option('--all', 'include expired and revoked grants')
    .option('--json', 'print JSON')
    .action((opts: { all?: boolean; json?: boolean }) => grantsCommand(io, opts));

  program
    .command('revoke')
    .description('revoke a grant now: its live sessions end within a second (id or a unique prefix)')
    .argument('<grant>')
    .option('-r, --reason <text>', 'why (shown to the grantee in the error that ends their sessions)')
    .action((id: string, opts: { reason?: string }) => revokeCommand(io, id, opts));

  program
    .command('connect')
    .description('open psql on a connection with a fresh token (in the environment, never on the command line)')
    .argument('<connection>', 'connection name')
    .argument('[psql-args...]', 'extra psql arguments, after --')
    .option('--tunnel', 'instead of psql, open a local port (127.0.0.1) for GUI tools')
    .option('-p, --port <n>', 'local port of the tunnel (default: any free port)')
    .option('--host <host>', "the gateway's PostgreSQL host (default: as the gateway reports it)")
    .option('--pg-port <n>', "the gateway's PostgreSQL port (default: as the gateway reports it)")
    .action((connection: string, psqlArgs: string[], opts: ConnectOptions) => connectCommand(io, connection, psqlArgs, opts));
}
