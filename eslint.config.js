// Lint: typescript-eslint's type-aware recommended rules, plus the habits this project
// keeps (no floating promises on the request path, no `any` without a reason).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'scripts/*.mjs', 'bin/*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      'no-console': 'error',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // Two ways a request's objects were kept alive past every scavenge, each measured as a
    // large share of the gateway's CPU under load (bench/README.md, "Garbage").
    files: ['src/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: ':not(MethodDefinition) > FunctionExpression[generator=true]',
          message:
            'A generator function made per call gets an initial map in the old generation that keeps it, and what it closes over, alive (bench/README.md, "Garbage"): use a private generator method, bound to its arguments.',
        },
        {
          selector: [
            "AssignmentExpression[left.type='MemberExpression'] > ArrowFunctionExpression.right",
            "AssignmentExpression[left.type='MemberExpression'] > FunctionExpression.right",
            "AssignmentExpression[left.type='MemberExpression'] > TSAsExpression.right > :matches(ArrowFunctionExpression, FunctionExpression).expression",
          ].join(', '),
          message:
            'A closure stored on an object that outlives this call keeps the whole scope it was made in alive (bench/README.md, "Garbage"): store a bound method instead.',
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: { 'no-console': 'off' },
  },
  {
    // Tests, the simulator and tools talk to the terminal and poke at untyped JSON.
    files: ['test/**', 'sim/**', 'bench/**', 'scripts/**', '**/*.test.ts'],
    rules: {
      // node:test's describe() and it() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }] }],
      'no-console': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
