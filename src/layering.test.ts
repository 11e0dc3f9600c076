/**
 * The import boundaries of eslint.boundaries.js fire: a forbidden import in a file of each layer
 * is an error, an allowed one is not. Lints source text with only those rules (no type
 * information), so it runs in a fraction of a second.
 */
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import { boundaries } from '../eslint.boundaries.js';

const eslint = new ESLint({
  overrideConfigFile: true,
  overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...boundaries],
});

async function problems(filePath: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

describe('import boundaries', () => {
  it.each([
    ['src/core/x.ts', "import type { Store } from '../store/store.js';", 'core/ imports nothing of the project'],
    ['src/policy/x.ts', "import { HttpError } from '../api/router.js';", 'only main.ts and session/ see everything'],
    ['src/masking/x.ts', "import { RedisReplyMasker } from '../protocols/redis/masking.js';", 'domain modules never import a protocol'],
    [
      'src/recording/x.ts',
      "import { PostgresListener } from '../protocols/postgres/listener.js';",
      'domain modules never import a protocol',
    ],
    ['src/audit/x.ts', "import type { AccessEvent } from '../access/events.js';", 'audit/ knows none of the modules'],
    ['src/protocols/postgres/codec.ts', "import { matchStatement } from '../../policy/guardrails.js';", 'import only core/ and crypto/'],
    ['src/protocols/mysql/relay.ts', "import type { SessionInfo } from '../postgres/listener.js';", 'never imports another protocol'],
    ['src/protocols/redis/relay.ts', "import { SqliteStore } from '../../store/sqlite.js';", 'protocol code imports only core/'],
    ['src/api/x.ts', "import { startMcp } from '../mcp/wire.js';", 'never each other'],
    ['src/cli/x.ts', "import { Router } from '../api/router.js';", 'never each other'],
    ['src/mcp/x.ts', "import { registerAccessRoutes } from '../api/access-routes.js';", 'only the HTTP plumbing of api/'],
  ])('%s: %s is refused', async (file, source, reason) => {
    const found = await problems(file, source);
    expect(found).toHaveLength(1);
    expect(found[0]).toContain('no-restricted-imports');
    expect(found[0]).toContain(reason);
  });

  it.each([
    ['src/core/x.ts', "import { systemClock } from './clock.js';"],
    ['src/protocols/postgres/codec.ts', "import { GatewayError } from '../../core/errors.js';"],
    ['src/protocols/postgres/relay.ts', "import { unsafeClientEncoding } from '../../sql/pg-client-encoding.js';"],
    ['src/protocols/mysql/listener.ts', "import { TcpListener } from '../tcp-server.js';"],
    ['src/masking/catalog.ts', "import { AdminConnection } from '../protocols/postgres/admin-client.js';"],
    ['src/mcp/x.ts', "import type { Router } from '../api/router.js';"],
    ['src/session/x.ts', "import { MysqlMasking } from '../protocols/mysql/masking.js';"],
    ['src/main.ts', "import { startMcp } from './mcp/wire.js';"],
    ['src/policy/x.test.ts', "import { parseConfig } from '../config/load.js';"],
  ])('%s: %s is allowed', async (file, source) => {
    expect(await problems(file, source)).toEqual([]);
  });
});
