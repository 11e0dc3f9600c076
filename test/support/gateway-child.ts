/**
 * A gateway in a child process, for tests that kill it without any cleanup (kill -9) to see what
 * the next gateway on the same state store does with what was left behind.
 *
 *   node --import tsx test/support/gateway-child.ts CONFIG USER CONNECTION
 *
 * Prints one JSON line once listening: { postgres: "host:port", token } (a fresh token, under an
 * admin-issued grant, for USER on CONNECTION), then runs until killed; SIGTERM drains its sessions
 * and exits 0, as `jitgate serve` does.
 */
import { adminToken } from './admin-token.js';
import { loadConfig } from '../../src/config/load.js';
import { startGateway } from '../../src/main.js';
import { createLogger } from '../../src/obs/log.js';

const [configPath, user, connection] = process.argv.slice(2);
if (!configPath || !user || !connection) {
  process.stderr.write('usage: gateway-child.ts CONFIG USER CONNECTION\n');
  process.exit(2);
}
const config = await loadConfig(configPath);
const gateway = await startGateway(config, { logger: createLogger({ level: 'silent' }) });
await gateway.credentials.firstSweep;
const { token } = await adminToken(gateway, { user, connection });
process.stdout.write(`${JSON.stringify({ postgres: gateway.addresses.postgres, token })}\n`);
process.once('SIGTERM', () => {
  gateway.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
