// Type-aware lint: the rules that catch real bugs in async, protocol-heavy code (floating
// promises, non-exhaustive switches over message types), React's hook rules in the portal,
// and the import boundaries that keep the shape of the code (docs/ARCHITECTURE.md).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';

/** Domain folders of the server: they own their SQL and never reach into an adapter. */
const DOMAINS = [
  'accounts',
  'admin',
  'alerts',
  'auth',
  'cases',
  'collection',
  'commands',
  'db',
  'events',
  'extracts',
  'fleet',
  'meters',
  'money',
  'netbilling',
  'notify',
  'outages',
  'readings',
  'supply',
];
const ADAPTERS = ['api', 'gateway', 'jobs', 'broker', 'demo', 'tools'];

const restricted = (patterns, paths = []) => ({
  '@typescript-eslint/no-restricted-imports': ['error', { patterns, paths }],
});

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      'data/**',
      '**/dist/**',
      'bench/out/**',
      'test-results/**',
      'coverage/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
    },
  },
  // Import boundaries. Domains: never an adapter (api, gateway, jobs, broker) or the process entry.
  {
    files: [
      ...DOMAINS.map((d) => `packages/server/src/${d}/**/*.ts`),
      'packages/server/src/policies.ts',
      'packages/server/src/errors.ts',
    ],
    rules: restricted([
      {
        group: [
          ...ADAPTERS.flatMap((a) => [`../${a}/*`, `../../${a}/*`, `./${a}/*`]),
          '../main.ts',
          './main.ts',
        ],
        message:
          'Domain code never imports an adapter (api, gateway, jobs, broker, demo, tools): adapters call domains.',
      },
    ]),
  },
  // The wire contract and the HTTP contract are leaves: no I/O, no server, no meter.
  {
    files: ['packages/protocol/src/**/*.ts', 'packages/contract/src/**/*.ts'],
    rules: restricted(
      [
        {
          group: ['**/server/**', '**/meter/**', '**/web/**'],
          message: 'The contracts depend on nothing but zod (and the protocol).',
        },
      ],
      [
        { name: '@kilowire/server', message: 'The contracts depend on nothing but zod (and the protocol).' },
        { name: '@kilowire/meter', message: 'The contracts depend on nothing but zod (and the protocol).' },
      ],
    ),
  },
  {
    files: ['packages/meter/src/**/*.ts'],
    rules: restricted(
      [{ group: ['**/server/**'], message: 'The meter talks to the server over MQTT only.' }],
      [{ name: '@kilowire/server', message: 'The meter talks to the server over MQTT only.' }],
    ),
  },
  // The portal: no server code, and only types from the zod-based contracts (values come from
  // their zod-free entry points, so no schema library lands in the browser bundle).
  {
    files: ['packages/web/src/**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'error',
      ...restricted(
        [
          {
            group: ['**/server/src/**', '**/server/test/**', '**/meter/src/**'],
            message: 'The portal never imports server or meter code.',
          },
        ],
        [
          { name: '@kilowire/server', message: 'The portal never imports server code.' },
          { name: '@kilowire/meter', message: 'The portal never imports meter code.' },
          {
            name: '@kilowire/contract',
            allowTypeImports: true,
            message: 'Types only; values from @kilowire/contract/enums.',
          },
          {
            name: '@kilowire/protocol',
            allowTypeImports: true,
            message: 'Types only; values from @kilowire/protocol/calendar or /enums.',
          },
          { name: 'zod', message: 'The portal does not ship a schema library.' },
        ],
      ),
    },
  },
  {
    files: ['packages/web/**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    rules: { 'react-hooks/rules-of-hooks': 'error' },
  },
  // Fastify plugins are async by contract, even those that only register routes.
  { files: ['packages/server/src/api/routes/*.ts'], rules: { '@typescript-eslint/require-await': 'off' } },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
