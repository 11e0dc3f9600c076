/**
 * Which configuration and state store an admin command works on:
 *   1. --config FILE
 *   2. the environment variable JITGATE_CONFIG
 *   3. ./jitgate.yaml when it exists
 *   4. otherwise the embedded default: data directory `.data` (or --data-dir), store `.data/jitgate.db`.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { DEFAULTS } from '../config/schema.js';
import type { GatewayConfig } from '../config/types.js';
import { openSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/store.js';
import { CliError, type CliIo } from './io.js';

export const CONFIG_ENV = 'JITGATE_CONFIG';
export const DEFAULT_CONFIG_FILE = 'jitgate.yaml';

export type ConfigSource = { kind: 'file'; path: string; from: 'flag' | 'env' | 'cwd' } | { kind: 'embedded'; dataDir: string };

export function findConfig(io: CliIo, flag: string | undefined, dataDir?: string): ConfigSource {
  if (flag !== undefined) return { kind: 'file', path: flag, from: 'flag' };
  const fromEnv = io.env[CONFIG_ENV];
  if (fromEnv) return { kind: 'file', path: fromEnv, from: 'env' };
  if (existsSync(resolve(io.cwd, DEFAULT_CONFIG_FILE))) return { kind: 'file', path: DEFAULT_CONFIG_FILE, from: 'cwd' };
  return { kind: 'embedded', dataDir: resolve(io.cwd, dataDir ?? DEFAULTS.dataDir) };
}

/** Config paths are given relative to the working directory; messages keep them as the user wrote them. */
export async function loadConfigFrom(io: CliIo, path: string, dataDir?: string): Promise<GatewayConfig> {
  return loadConfig(resolve(io.cwd, path), {
    sourceName: path,
    ...(dataDir !== undefined ? { dataDir: resolve(io.cwd, dataDir) } : {}),
  });
}

export interface AdminTarget {
  source: ConfigSource;
  /** Present when a config file was found. */
  config?: GatewayConfig;
  storePath: string;
}

export async function adminTarget(io: CliIo, opts: { config?: string; dataDir?: string }): Promise<AdminTarget> {
  const source = findConfig(io, opts.config, opts.dataDir);
  if (source.kind === 'embedded') return { source, storePath: join(source.dataDir, DEFAULTS.storeFile) };
  const config = await loadConfigFrom(io, source.path, opts.dataDir);
  return { source, config, storePath: config.store.path };
}

export function openStore(path: string): Store {
  try {
    return openSqliteStore(path);
  } catch (err) {
    throw new CliError(`cannot open the state store ${path}: ${(err as Error).message}`);
  }
}

/** Run `fn` with the store open, closing it afterwards whatever happens. */
export async function withStore<T>(path: string, fn: (store: Store) => T | Promise<T>): Promise<T> {
  const store = openStore(path);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
