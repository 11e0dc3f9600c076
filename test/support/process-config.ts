/**
 * The configuration file for gateways run as separate processes on one data directory (the
 * `--workers` primary, child gateways): loopback listeners on free ports, silent logs, one
 * connection `app` to the private PostgreSQL's trust user.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PgServer } from './pg-server.js';

/** Writes `<dir>/jitgate.yaml` (state under `<dir>/data`, `extraYaml` at the top level) and returns its path. */
export function writeProcessConfig(dir: string, server: PgServer, o: { drainTimeout: string; extraYaml?: string }): string {
  const path = join(dir, 'jitgate.yaml');
  writeFileSync(
    path,
    `development: true
dataDir: ${join(dir, 'data')}
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: { host: 127.0.0.1, port: 0 }
log: { level: silent }
shutdown: { drainTimeout: ${o.drainTimeout} }
connections:
  - { name: app, host: 127.0.0.1, port: ${server.port}, database: app, user: ${server.users.trust.user}, tls: { mode: disable } }
${o.extraYaml ?? ''}`,
  );
  return path;
}
