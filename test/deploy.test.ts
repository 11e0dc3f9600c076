/**
 * The Dockerfile, deploy/compose.yaml and deploy/kubernetes/ agree with the code and with the
 * configuration they ship (deploy/jitgate.yaml): ports, probe paths, the config file's place, data
 * directory, environment variable names, the Node version and the serve command. No container runs
 * here; the probe paths are asked of a real gateway started from the shipped configuration.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { CONFIG_ENV } from '../src/cli/context.js';
import { parseConfig } from '../src/config/load.js';
import type { GatewayConfig } from '../src/config/types.js';
import { MASTER_KEY_ENV } from '../src/credentials/secret-store.js';
import { startGateway } from '../src/main.js';
import { createLogger } from '../src/obs/log.js';
import { cli } from './support/recording.js';

const ROOT = resolve(import.meta.dirname, '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const configText = read('deploy/jitgate.yaml');
const config = parseConfig(configText, 'deploy/jitgate.yaml', '/');

/** The ports the shipped configuration listens on, by listener. */
function listenerPorts(c: GatewayConfig): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, l] of Object.entries(c.listeners)) {
    if (l && typeof l === 'object' && 'port' in l && (l as { enabled?: boolean }).enabled !== false)
      out[name] = (l as { port: number }).port;
  }
  return out;
}
const ports = listenerPorts(config);
/** What the compose file's gateways run with: the shipped configuration and recordings on its S3 store. */
const composeConfigText = read('deploy/jitgate.compose.yaml');
const composeConfig = parseConfig(composeConfigText, 'deploy/jitgate.compose.yaml', '/');
const envRefs = (text: string) => [...text.matchAll(/env:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!);
/** Environment the gateway reads: its own variables and the configuration's env: references. */
const ENV_NAMES = new Set([MASTER_KEY_ENV, CONFIG_ENV, ...envRefs(configText)]);
const COMPOSE_ENV_NAMES = new Set([...ENV_NAMES, ...envRefs(composeConfigText)]);
const PROBES = { readiness: '/readyz', liveness: '/healthz' };

describe('the shipped configuration', () => {
  it('listens on every interface, keeps its state in the image volume, and names its secrets by env', () => {
    expect(config.development).toBe(false);
    expect(config.dataDir).toBe('/var/lib/jitgate');
    expect(ports).toEqual({ http: 8080, postgres: 5433 });
    for (const l of Object.values(config.listeners)) if (l && typeof l === 'object' && 'host' in l) expect(l.host).toBe('0.0.0.0');
    expect(ENV_NAMES).toContain('APP_DB_PASSWORD');
  });
});

describe('Dockerfile', () => {
  const text = read('Dockerfile').replace(/\\\n/g, ' ');
  const lines = text.split('\n').filter((l) => !l.startsWith('#'));
  const instr = (name: string) => lines.filter((l) => l.startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim());

  it('copies files that exist, the shipped config where JITGATE_CONFIG points', () => {
    for (const copy of instr('COPY').filter((c) => !c.startsWith('--from'))) {
      const parts = copy.split(/\s+/);
      for (const src of parts.slice(0, -1)) expect(existsSync(join(ROOT, src)), src).toBe(true);
    }
    const configCopy = instr('COPY').find((c) => c.startsWith('deploy/jitgate.yaml '))!;
    expect(instr('ENV').join(' ')).toContain(`${CONFIG_ENV}=${configCopy.split(/\s+/)[1]}`);
  });

  it('exposes the configured ports, keeps the data directory as a volume, runs unprivileged', () => {
    expect(instr('EXPOSE').join(' ').split(/\s+/).map(Number).sort()).toEqual(Object.values(ports).sort());
    expect(instr('VOLUME')).toEqual([config.dataDir]);
    expect(instr('USER')).toEqual(['node']);
  });

  it('checks health on the configured HTTP port and the liveness path', () => {
    expect(instr('HEALTHCHECK')[0]).toContain(`http://127.0.0.1:${ports.http}${PROBES.liveness}`);
  });

  it('builds and runs on the Node major the package declares, with the built CLI and its serve options', async () => {
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
    const major = /\d+/.exec(engines)![0];
    for (const from of instr('FROM')) expect(from).toMatch(new RegExp(`^node:${major}-`));
    expect(instr('ENTRYPOINT')[0]).toBe('["node", "bin/jitgate.js"]');
    expect(existsSync(join(ROOT, 'bin/jitgate.js'))).toBe(true);
    const cmd = JSON.parse(instr('CMD')[0]!) as string[];
    expect(cmd.slice(0, 1)).toEqual(['serve']);
    const help = await cli(['serve', '--help']);
    for (const option of cmd.filter((a) => a.startsWith('--'))) expect(help.out).toContain(option);
  });
});

describe('deploy/compose.yaml', () => {
  const compose = parseYaml(read('deploy/compose.yaml'), { merge: true }) as {
    services: Record<
      string,
      {
        environment?: Record<string, string>;
        ports?: string[];
        volumes?: string[];
        command?: string[];
        depends_on?: Record<string, unknown>;
      }
    >;
  };
  const gateways = Object.entries(compose.services).filter(([name]) => name.startsWith('gateway'));

  it('runs two gateways on one data volume, each given only environment the gateway reads', () => {
    expect(gateways).toHaveLength(2);
    for (const [, g] of gateways) {
      expect(Object.keys(g.environment!).filter((k) => !COMPOSE_ENV_NAMES.has(k))).toEqual([]);
      expect(Object.keys(g.environment!)).toEqual(
        expect.arrayContaining([MASTER_KEY_ENV, 'APP_DB_PASSWORD', ...envRefs(composeConfigText)]),
      );
      // The data volume, and the compose configuration mounted where JITGATE_CONFIG points.
      expect(g.volumes).toEqual([`jitgate-data:${config.dataDir}`, `./jitgate.compose.yaml:${g.environment![CONFIG_ENV]}:ro`]);
      expect(g.ports!.map((p) => Number(p.split(':')[1])).sort()).toEqual(Object.values(ports).sort());
      expect(g.command![0]).toBe('serve');
    }
  });

  it('starts the backend the shipped configuration connects to', () => {
    const backend = config.connections[0]!;
    expect(compose.services[backend.host]).toBeDefined();
  });

  it('runs the shipped configuration with recordings on its S3-compatible store, whose bucket it creates first', () => {
    const storage = composeConfig.recording!.storage;
    const { recording: _, source: _s, ...rest } = composeConfig;
    const { recording: _r, source: _t, ...shipped } = config;
    expect(rest).toEqual(shipped);
    expect({ ...composeConfig.recording, storage: { type: 'local' } }).toEqual(config.recording);
    if (storage.type !== 's3') throw new Error('expected recordings on s3');
    const endpoint = new URL(storage.endpoint!);
    expect(compose.services[endpoint.hostname]).toBeDefined();
    const bucketJob = Object.values(compose.services).find((svc) => svc.command?.[0] === 'mb')!;
    expect(bucketJob.command!.at(-1)).toBe(`store/${storage.bucket}`);
    expect(bucketJob.environment!.MC_HOST_store).toContain(`@${endpoint.host}`);
    expect(gateways[0]![1].depends_on).toHaveProperty([Object.keys(compose.services).find((k) => compose.services[k] === bucketJob)!]);
  });
});

describe('deploy/kubernetes', () => {
  type Doc = { kind: string; metadata: { name: string }; [k: string]: unknown };
  const docs = parseAllDocuments(read('deploy/kubernetes/jitgate.yaml')).map((d) => d.toJSON() as Doc);
  const byKind = (kind: string) => docs.find((d) => d.kind === kind) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const deployment = byKind('Deployment');
  const container = deployment.spec.template.spec.containers[0];
  const namedPort = (name: string) => (container.ports as Array<{ name: string; containerPort: number }>).find((p) => p.name === name)!;

  it('ships the same configuration in its ConfigMap, mounted where JITGATE_CONFIG points', () => {
    const fromMap = parseConfig(byKind('ConfigMap').data['jitgate.yaml'], 'configmap', '/');
    expect({ ...fromMap, source: undefined }).toEqual({ ...config, source: undefined });
    const mount = (container.volumeMounts as Array<{ name: string; mountPath: string }>).find((m) => m.name === 'config')!;
    expect(container.env).toContainEqual({ name: CONFIG_ENV, value: `${mount.mountPath}/jitgate.yaml` });
    const data = (container.volumeMounts as Array<{ name: string; mountPath: string }>).find((m) => m.name === 'data')!;
    expect(data.mountPath).toBe(config.dataDir);
  });

  it('probes the readiness and liveness paths on the configured HTTP port', () => {
    expect(namedPort('http').containerPort).toBe(ports.http);
    expect(container.readinessProbe.httpGet).toEqual({ path: PROBES.readiness, port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: PROBES.liveness, port: 'http' });
  });

  it('exposes every configured listener through the Service, and only those', () => {
    const service = byKind('Service');
    const targets = (service.spec.ports as Array<{ targetPort: string }>).map((p) => namedPort(p.targetPort).containerPort);
    expect(targets.sort()).toEqual(Object.values(ports).sort());
  });

  it('takes its environment from the Secret, naming only variables the gateway reads', () => {
    const secretKeys = Object.keys(byKind('Secret').stringData);
    for (const e of container.env as Array<{ name: string; valueFrom?: { secretKeyRef: { key: string } } }>) {
      expect(ENV_NAMES.has(e.name), e.name).toBe(true);
      if (e.valueFrom) expect(secretKeys).toContain(e.valueFrom.secretKeyRef.key);
    }
    expect(secretKeys.sort()).toEqual([MASTER_KEY_ENV, 'APP_DB_PASSWORD'].sort());
  });

  it('lets sessions drain before the pod is killed; one replica on a ReadWriteOnce volume, replaced with Recreate', () => {
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(config.shutdown.drainTimeoutMs);
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy.type).toBe('Recreate');
    expect(byKind('PersistentVolumeClaim').spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(byKind('PodDisruptionBudget').spec.selector).toEqual(deployment.spec.selector);
    expect(container.args[0]).toBe('serve');
  });
});

describe('the probe paths on a gateway started from the shipped configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jitgate-deploy-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('answers liveness and readiness where the image and the manifests ask', async () => {
    // Loopback and free ports instead of the container's, the rest as shipped (the backend host does not resolve here).
    const local = parseConfig(
      configText
        .replace(/host: 0\.0\.0\.0, port: \d+/g, 'host: 127.0.0.1, port: 0')
        .replace('dataDir: /var/lib/jitgate', `dataDir: ${dir}`),
      'deploy/jitgate.yaml',
      dir,
    );
    const gateway = await startGateway(local, { env: { APP_DB_PASSWORD: 'unused' }, logger: createLogger({ level: 'silent' }) });
    try {
      const live = await fetch(`${gateway.addresses.http}${PROBES.liveness}`);
      expect(live.status).toBe(200);
      const ready = await fetch(`${gateway.addresses.http}${PROBES.readiness}`);
      expect([200, 503]).toContain(ready.status);
      expect(((await ready.json()) as { status: string }).status).toMatch(/^(ready|not_ready)$/);
    } finally {
      await gateway.close();
    }
  }, 30_000);
});
