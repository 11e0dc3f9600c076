/**
 * The layering of src/ (README "Architecture", "Boundaries"), enforced with ESLint's built-in
 * no-restricted-imports: each block names the folders its files may not import. Tests are exempt
 * (a test composes what it needs, like main.ts). A flat config applies only the last matching
 * setting of a rule to a file, so every block lists its whole set, from general to specific.
 */

/** An import of one of `folders` (relative, from anywhere under src/): `../api/x.js`, `../../main.js`. */
const reach = (folders, message) => ({ regex: `^(\\.\\./)+(${folders.join('|')})(/|\\.js$)`, message });

const ADAPTERS = ['api', 'mcp', 'cli', 'session', 'main'];
const notAdapters = reach(ADAPTERS, 'only main.ts and session/ see everything; api/, mcp/ and cli/ are adapters nothing else imports');
const notProtocols = reach(['protocols'], 'domain modules never import a protocol; the protocol imports the domain module, or session/ wires both');
const STATEFUL = ['store', 'obs', 'config', 'access', 'review', 'recording', 'audit', 'identity', 'credentials', 'notify', 'demo', 'tls', 'instances'];

/** Files listed in `files` may not import the patterns in `forbid`. */
const layer = (files, forbid, ignores = []) => ({
  files,
  ignores: ['**/*.test.ts', ...ignores],
  rules: { 'no-restricted-imports': ['error', { patterns: forbid }] },
});

/** The PostgreSQL admin client the masking catalog reads the backend's catalog with (README: a known exception). */
const CATALOG_READER = 'src/masking/catalog.ts';

/** Protocol files that analyse statements or mask results: they may also use sql/, policy/ and masking/. */
const PROTOCOL_ENGINES = ['listener', 'relay', 'masking', 'result-masker'];

const protocolFolder = (name, others) => [
  // Listeners, relays and maskers: core/, crypto/, the pure layers and protocols/tcp-server.ts.
  layer([`src/protocols/${name}/**/*.ts`], [
    reach([...ADAPTERS, ...STATEFUL], 'protocol code imports only core/, crypto/ and the pure layers sql/, policy/, masking/'),
    { regex: `^\\.\\./(${others.join('|')})/`, message: 'a protocol never imports another protocol; shared contracts live in core/' },
  ]),
  // Everything else (codecs, auth, backend clients, errors): core/ and crypto/ only.
  layer([`src/protocols/${name}/**/*.ts`], [
    { regex: '^\\.\\./(?!\\.\\./(core|crypto)/)', message: 'protocol codecs, auth and backend clients import only core/ and crypto/' },
  ], PROTOCOL_ENGINES.map((f) => `src/protocols/${name}/${f}.ts`)),
];

export const boundaries = [
  // Everything below the adapters.
  layer(['src/**/*.ts'], [notAdapters], ['src/main.ts', 'src/session/**', 'src/api/**', 'src/mcp/**', 'src/cli/**']),
  // Adapters call services, never each other. mcp/ mounts on the HTTP server: api/router.ts and
  // api/http.ts are that server's plumbing (README: a known exception).
  layer(['src/api/**/*.ts'], [reach(['mcp', 'cli', 'main'], 'api/, mcp/ and cli/ call services, never each other')]),
  layer(['src/mcp/**/*.ts'], [
    reach(['cli', 'main'], 'api/, mcp/ and cli/ call services, never each other'),
    { regex: '^(\\.\\./)+api/(?!(router|http)\\.js$)', message: 'mcp/ may use only the HTTP plumbing of api/ (router.ts, http.ts)' },
  ]),
  layer(['src/cli/**/*.ts'], [reach(['api', 'mcp'], 'api/, mcp/ and cli/ call services, never each other')]),
  // Domain modules never import an adapter or a protocol.
  layer(['src/{access,review,recording,instances}/**/*.ts'], [notAdapters, notProtocols]),
  // The audit log knows none of the modules writing to it.
  layer(['src/audit/**/*.ts'], [notAdapters, notProtocols, reach(['access', 'review', 'recording', 'identity', 'credentials', 'instances'], 'audit/ knows none of the modules that write to it')]),
  // Pure layers: no sockets, no store, no services.
  layer(['src/{policy,masking,sql}/**/*.ts'], [notAdapters, notProtocols, reach(STATEFUL, 'policy/, masking/ and sql/ are pure: no store, no services')], [CATALOG_READER]),
  layer([CATALOG_READER], [
    notAdapters,
    reach(STATEFUL, 'policy/, masking/ and sql/ are pure: no store, no services'),
    { regex: '^\\.\\./protocols/(?!postgres/admin-client\\.js$)', message: 'the catalog reads the backend only through the PostgreSQL admin client' },
  ]),
  ...protocolFolder('postgres', ['mysql', 'redis']),
  ...protocolFolder('mysql', ['postgres', 'redis']),
  ...protocolFolder('redis', ['postgres', 'mysql']),
  layer(['src/protocols/*.ts'], [reach([...ADAPTERS, ...STATEFUL], 'protocol code imports only core/, crypto/ and the pure layers')]),
  // core/ imports nothing of the project.
  layer(['src/core/**/*.ts'], [{ regex: '^\\.\\./', message: 'core/ imports nothing of the project' }]),
];
