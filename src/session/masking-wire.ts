/**
 * Masking for the gateway: the hash key, and each session's MaskingScope (the rules and detectors
 * for its connection and groups), which the SessionService hands to the session's protocol: its
 * listener builds its own masker from it (SessionInfo.masker). Sessions no rule or detector applies
 * to get no masking at all, so their data path stays plain passthrough.
 *
 * The policy tool (`jitgate policy test`, ./explain.ts) runs no listener: for it this module builds
 * each protocol's masker itself, reading the backend over the gateway's own connections (here in
 * session/, which may see every protocol, so that masking/ never imports one).
 */
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { BackendTarget, KeyKeeper, MaskingScope, Protocol, SessionMasking, StatementMaskExplanation } from '../core/types.js';
import { maskingFor, type MaskingConfig } from '../masking/policy.js';
import { withMysqlAdmin } from '../protocols/mysql/admin-client.js';
import { MysqlMasking, VIEWS_QUERY } from '../protocols/mysql/masking.js';
import { PostgresCatalogs } from '../protocols/postgres/masking.js';
import { redisMasking } from '../protocols/redis/masking.js';

/** A session's masker as the policy tool uses it: its check, and (PostgreSQL) the lineage behind each mask. */
export type PolicyMasker = SessionMasking & { explain?(text: string): StatementMaskExplanation[] | undefined };

export interface MaskingModule {
  /** The masking that applies to a session, or undefined when no rule or detector does. */
  scope(session: { connection: string; groups: readonly string[] }): MaskingScope | undefined;
  /** For the policy tool: the masker a session of `protocol` would get (undefined: nothing applies to it). */
  policyMasker(protocol: Protocol, scope: MaskingScope): PolicyMasker | undefined;
  close(): Promise<void>;
}

export async function startMasking(options: {
  config: MaskingConfig | undefined;
  targets: Map<string, BackendTarget>;
  dataDir: string;
  resolveSecret: (ref: string) => Promise<string>;
  /** Where the generated hash key is kept: shared by every instance on the store, so hashes join across them. */
  keys: KeyKeeper;
}): Promise<MaskingModule | undefined> {
  const config = options.config;
  if (!config || (config.rules.length === 0 && config.detectors.length === 0)) return undefined;
  const hashKey = config.hashKey
    ? sha256(await options.resolveSecret(config.hashKey))
    : await generatedHashKey(options.keys, options.dataDir);
  const catalogs = new PostgresCatalogs((connection) => options.targets.get(connection));
  return {
    scope({ connection, groups }) {
      const { rules, detectors } = maskingFor(config, connection, groups);
      if (rules.length === 0 && detectors.length === 0) return undefined;
      return { connection, rules, detectors, hashKey };
    },
    policyMasker(protocol, scope) {
      switch (protocol) {
        case 'postgres':
          return catalogs.masking(scope);
        case 'mysql': {
          // Views name themselves as their columns' origin: masking reads them first (a session's
          // listener reads them over the session's own connection; here the gateway's).
          const target = options.targets.get(scope.connection);
          const views = target
            ? () => withMysqlAdmin(target, (c) => c.query(VIEWS_QUERY))
            : () => Promise.reject(new Error(`no backend target for ${scope.connection}`));
          return new MysqlMasking({ ...scope, views });
        }
        case 'redis':
          return redisMasking(scope);
      }
    },
    close: () => catalogs.close(),
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** A key generated once, so hashes stay stable across restarts and instances. */
async function generatedHashKey(keys: KeyKeeper, dataDir: string): Promise<Buffer> {
  const key = await keys.key('masking-hash', { file: join(dataDir, 'masking-hash.key'), create: () => randomBytes(32).toString('hex') });
  return Buffer.from(key.value, 'hex');
}
