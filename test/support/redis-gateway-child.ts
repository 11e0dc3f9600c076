/**
 * A gateway with a Redis listener in a child process, for tests that kill it without any cleanup
 * (kill -9) and look at what it left behind.
 *
 *   node --import tsx test/support/redis-gateway-child.ts CONFIG USER CONNECTION
 *
 * Prints one JSON line once listening: { redis: "host:port", token } (a fresh token, under an
 * admin-issued grant, for USER on CONNECTION), then runs until killed. The backend password comes
 * from the environment, as the configuration says.
 */
import { adminToken } from './admin-token.js';
import { loadConfig } from '../../src/config/load.js';
import { startGateway } from '../../src/main.js';
import { createLogger } from '../../src/obs/log.js';

const [configPath, user, connection] = process.argv.slice(2);
if (!configPath || !user || !connection) {
  process.stderr.write('usage: redis-gateway-child.ts CONFIG USER CONNECTION\n');
  process.exit(2);
}
const config = await loadConfig(configPath);
const gateway = await startGateway(config, { logger: createLogger({ level: 'silent' }) });
const { token } = await adminToken(gateway, { user, connection });
process.stdout.write(`${JSON.stringify({ redis: gateway.addresses.redis, token })}\n`);
