/**
 * Builds masking for the gateway (in session/, which may see every protocol, so that masking/ itself
 * never imports one): the hash key, one catalog source per PostgreSQL connection, and
 * the per-session factory the SessionService calls. Sessions no rule or detector applies to get no
 * masking at all, so their data path stays plain passthrough.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendTarget, Protocol, SessionMasking } from '../core/types.js';
import { CatalogSource } from '../masking/catalog.js';
import { maskingFor, type MaskingConfig } from '../masking/policy.js';
import { MaskingSession } from '../masking/session.js';
import { withMysqlAdmin } from '../protocols/mysql/admin-client.js';
import { MysqlMasking, VIEWS_QUERY } from '../protocols/mysql/masking.js';
import type { RedisMaskingPolicy } from '../protocols/redis/masking.js';

export interface MaskingModule {
  forSession(session: { protocol: Protocol; connection: string; groups: readonly string[] }): SessionMasking | undefined;
  /** Redis sessions: key and hash-field rules and detectors that apply (protocols/redis/masking.ts), if any. */
  redisPolicy(connection: string, groups: readonly string[]): RedisMaskingPolicy | undefined;
  close(): Promise<void>;
}

export async function startMasking(options: {
  config: MaskingConfig | undefined;
  targets: Map<string, BackendTarget>;
  dataDir: string;
  resolveSecret: (ref: string) => Promise<string>;
}): Promise<MaskingModule | undefined> {
  const config = options.config;
  if (!config || (config.rules.length === 0 && config.detectors.length === 0)) return undefined;
  const hashKey = config.hashKey ? sha256(await options.resolveSecret(config.hashKey)) : localHashKey(options.dataDir);
  const sources = new Map<string, CatalogSource>();
  return {
    forSession({ protocol, connection, groups }) {
      if (protocol === 'mysql') {
        // MySQL results carry their source columns; only views need the catalog.
        const { rules, detectors } = maskingFor(config, connection, groups);
        if (rules.length === 0 && detectors.length === 0) return undefined;
        const target = options.targets.get(connection);
        // Views name themselves as their columns' origin: masking reads them at session start (the
        // MySQL listener over the session's own backend connection; this is for other callers).
        const views = target
          ? () => withMysqlAdmin(target, (c) => c.query(VIEWS_QUERY))
          : () => Promise.reject(new Error(`no backend target for ${connection}`));
        return new MysqlMasking({ rules, detectors, hashKey, views });
      }
      if (protocol !== 'postgres') return undefined;
      const { rules, detectors } = maskingFor(config, connection, groups);
      if (rules.length === 0 && detectors.length === 0) return undefined;
      const target = options.targets.get(connection);
      let source = sources.get(connection);
      if (!source && target) sources.set(connection, (source = new CatalogSource(target)));
      const catalogSource = source;
      return new MaskingSession({
        rules,
        detectors,
        hashKey,
        loadCatalog: (maxAgeMs) =>
          catalogSource ? catalogSource.load(maxAgeMs) : Promise.reject(new Error(`no backend for connection ${connection}`)),
      });
    },
    redisPolicy(connection, groups) {
      const { rules, detectors } = maskingFor(config, connection, groups);
      const keys = rules.flatMap((r) => (r.keys ?? []).map((k) => ({ ...k, rule: r.name })));
      const fields = rules.flatMap((r) => (r.fields ?? []).map((f) => ({ ...f, rule: r.name })));
      if (keys.length === 0 && fields.length === 0 && detectors.length === 0) return undefined;
      return { keys, fields, detectors, hashKey };
    },
    async close() {
      await Promise.all([...sources.values()].map((s) => s.close()));
    },
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** A key generated once and kept under dataDir, so hashes stay stable across restarts. */
function localHashKey(dataDir: string): Buffer {
  const path = join(dataDir, 'masking-hash.key');
  if (existsSync(path)) return Buffer.from(readFileSync(path, 'utf8').trim(), 'hex');
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(path, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  return key;
}
