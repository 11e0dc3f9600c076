/**
 * Protections every PostgreSQL session gets, with or without guardrails:
 *
 * - The gateway's backend credential never leaves: statements that read the catalogs holding role
 *   passwords or user-mapping secrets (pg_authid, pg_shadow, pg_user_mapping(s), the
 *   information_schema's user_mapping_options), the server's authentication and configuration files
 *   (pg_hba_file_rules, pg_ident_file_mappings, pg_file_settings), or server files (pg_read_file,
 *   pg_read_binary_file, server-side lo_import, COPY to or from a file or program) are refused.
 * - Sessions of different people that share one backend role (static credentials) cannot see or
 *   stop each other: reading other backends' activity (pg_stat_activity, pg_locks and the
 *   pg_stat_get_* backend functions) is refused, and pg_terminate_backend / pg_cancel_backend
 *   only reach the session's own backend. A session with its own role (ephemeral credentials)
 *   is shielded by PostgreSQL itself and may read its own activity.
 *
 * - Statements are parsed as the server parses them only while standard_conforming_strings is on
 *   (with it off, a backslash ends a string literal differently): changing it is refused, and the
 *   protocol engine ends a session whose backend reports it off.
 *
 * The checks read parsed statements, SQL passed as literal text and the code of DO blocks and
 * function bodies included; SQL text built at run time (query_to_xml($1), EXECUTE of a concatenation
 * in a DO block) is refused where the role is shared. Calls of functions created earlier are not
 * followed into their bodies: guardrails refuse them, and the README says what the backend role
 * must not be allowed so PostgreSQL refuses the rest.
 */
import type { Decision, Statement } from '../core/types.js';
import { READS_EVERY_TABLE, TABLE_AT_RUN_TIME, UNREADABLE_TEXT } from '../sql/pg-calls.js';
import { unreadBody } from '../sql/pg-plpgsql.js';
import { unsafeClientEncoding } from '../sql/pg-client-encoding.js';
import { analysePostgresCached, type StatementInfo } from '../sql/postgres.js';
import { nameMatch } from './guardrails.js';

export interface SessionProtectionContext {
  /** The pid of this session's backend (pg_backend_pid()). */
  ownBackendPid: number;
  /** The backend role is shared with other people's sessions (static credentials). */
  sharedRole: boolean;
}

const CREDENTIAL_RELATIONS = [
  'pg_authid',
  'pg_shadow',
  'pg_user_mapping',
  'pg_user_mappings',
  'user_mapping_options',
  'pg_hba_file_rules',
  'pg_ident_file_mappings',
  'pg_file_settings',
];
const CREDENTIAL_FUNCTIONS = [
  'pg_read_file',
  'pg_read_binary_file',
  'lo_import',
  'pg_hba_file_rules',
  'pg_ident_file_mappings',
  'pg_show_all_file_settings',
];
/** Other backends' statement texts (pg_stat_statements too), locks and prepared transactions (pg_stat_ssl and the progress views show no statement). */
const ACTIVITY_RELATIONS = ['pg_stat_activity', 'pg_locks', 'pg_stat_statements', 'pg_stat_statements_info', 'pg_prepared_xacts'];
const ACTIVITY_FUNCTIONS = ['pg_stat_get_activity', 'pg_stat_get_backend_*', 'pg_lock_status', 'pg_stat_statements'];

/**
 * Only statements whose text mentions one of these can reach what is protected (catalog and
 * function names start with pg_; U& spells identifiers with escapes; the rest run SQL text or read
 * server files), so ordinary statements are not parsed for this.
 */
const MIGHT_REACH =
  /pg_|u&|_to_xml|query_to|ts_stat|ts_rewrite|copy|lo_import|mapping|\bdo\b|function|procedure|standard_conforming|encoding|names/i;

/** Large-object functions libpq calls through the function-call protocol (by their fixed OIDs). */
const LARGE_OBJECT_FUNCTION_OIDS = new Set([715, 952, 953, 954, 955, 956, 957, 958, 964, 1004, 3170, 3171, 3172]);

/** The refusal for one statement of a PostgreSQL session (any source), or undefined when it may run. */
export function protectPostgresStatement(statement: Statement, ctx: SessionProtectionContext): Decision | undefined {
  if (statement.source === 'function-call') {
    const oid = /oid (\d+)$/.exec(statement.text);
    return protectFunctionCall(oid ? Number(oid[1]) : -1, ctx);
  }
  return statement.source === 'command' ? undefined : protectStatement(statement.text, ctx);
}

/** The refusal for a statement, or undefined when it may run. */
export function protectStatement(text: string, ctx: SessionProtectionContext): Decision | undefined {
  if (!MIGHT_REACH.test(text)) return undefined;
  const analysis = analysePostgresCached(text);
  // What does not parse cannot run either; the backend answers it with its own syntax error.
  if (!analysis.ok) return undefined;
  for (const s of analysis.statements) {
    const found = credentialReach(s) ?? (ctx.sharedRole ? otherSessionsReach(s, ctx.ownBackendPid) : undefined);
    if (found) return refusal(found[0], found[1]);
  }
  return undefined;
}

/** The function-call protocol names a function by OID: only libpq's large-object calls pass in shared-role sessions. */
export function protectFunctionCall(oid: number, ctx: SessionProtectionContext): Decision | undefined {
  if (!ctx.sharedRole || LARGE_OBJECT_FUNCTION_OIDS.has(oid)) return undefined;
  return refusal(
    'function_call_protocol',
    'the function call protocol is limited to large-object functions on a connection whose backend role is shared',
  );
}

type Found = [string, string];

/** The setting that decides how string literals are read; the parser assumes it on. */
export const LITERAL_SETTING = 'standard_conforming_strings';

function credentialReach(s: StatementInfo): Found | undefined {
  if (s.settings?.includes(LITERAL_SETTING)) {
    return [
      'parser_setting',
      `${LITERAL_SETTING} may not be changed through jitgate: statements are read with it on, as PostgreSQL's default`,
    ];
  }
  if (s.settings?.includes('client_encoding')) {
    const value = s.settingValues?.client_encoding;
    if (value === null || value === undefined || unsafeClientEncoding(value)) {
      return [
        'parser_setting',
        `client_encoding ${value ?? '(computed)'} is not supported through jitgate: statements are read as text in a safe encoding (UTF8 and single-byte ones)`,
      ];
    }
  }
  // SQL or a table name handed to query_to_xml, ts_stat, table_to_xml ... at run time ($1, a
  // concatenation) would be read by nobody; these built-ins are rare enough to refuse.
  const unreadable = s.opaque?.find((o) => o.endsWith(UNREADABLE_TEXT) || o.endsWith(TABLE_AT_RUN_TIME) || o.endsWith(READS_EVERY_TABLE));
  if (unreadable) return ['unreadable_sql_text', `${unreadable}: jitgate reads the SQL text such functions run only when it is a literal`];
  const table = s.tablesRead.find((t) => CREDENTIAL_RELATIONS.some((p) => nameMatch(p, t)));
  if (table) return ['credential_catalog', `${table} holds credentials and is not readable through jitgate`];
  const fn = s.functions.find((f) => CREDENTIAL_FUNCTIONS.some((p) => nameMatch(p, f)));
  if (fn) return ['server_files', `${fn}() reads server files and is not allowed through jitgate`];
  if (s.copyTargets?.some((t) => t === 'file' || t === 'program')) {
    return ['server_files', 'COPY to or from a server file or program is not allowed through jitgate'];
  }
  return undefined;
}

function otherSessionsReach(s: StatementInfo, ownPid: number): Found | undefined {
  // A DO block or function body that builds SQL at run time (or that jitgate cannot read) could
  // reach what is refused here by a name no parse sees; on a shared role it is refused too.
  const unseen = s.opaque?.find(unreadBody);
  if (unseen) return ['unreadable_code', `${unseen}, which jitgate cannot check on a connection whose backend role is shared`];
  const table = s.tablesRead.find((t) => ACTIVITY_RELATIONS.some((p) => nameMatch(p, t)));
  const fn = s.functions.find((f) => ACTIVITY_FUNCTIONS.some((p) => nameMatch(p, f)));
  if (table || fn) {
    return [
      'other_sessions',
      `${table ?? `${fn}()`} shows other people's sessions, which share this connection's backend role; it is not readable through jitgate`,
    ];
  }
  const other = s.backendSignals?.find((pid) => pid !== 'self' && pid !== ownPid);
  if (other !== undefined) {
    return ['other_sessions', "pg_terminate_backend and pg_cancel_backend may only name this session's own backend (pg_backend_pid())"];
  }
  return undefined;
}

function refusal(reason: string, what: string): Decision {
  return { effect: 'deny', reasons: [reason], message: `jitgate: ${what}` };
}
