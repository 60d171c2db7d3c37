// ESLint flat config: typescript-eslint's recommended rules over the TS
// sources, the type-aware rules the runtime depends on, and the layers:
//   runtime  ← sandbox ← actors ← (nothing)      supervisor → runtime only
// runtime imports nothing above it; the supervisor never imports an actor
// (it names actor modules by URL); no actor imports another actor's code
// (what two actors share lives in runtime/: protocol/, domain/).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const ACTORS = ['journal', 'gossip', 'grants', 'nft'];

/** no-restricted-imports patterns that forbid importing from `dirs` (any depth of ../). */
const above = (dirs, message) => ({
  group: dirs.flatMap((d) => [`**/${d}/*`, `**/${d}/**`, `../${d}/*`]),
  message,
});

/** For one actor's folder: the other actors' folders are off limits. */
const otherActors = (me) =>
  ACTORS.filter((a) => a !== me).map((a) => ({
    group: [`../${a}/*`, `../../actors/${a}/*`, `**/actors/${a}/**`],
    message: `actors/${me} may not import actors/${a}: share it through runtime/ (protocol/, domain/)`,
  }));

const restrict = (patterns) => ({
  'no-restricted-imports': ['error', { patterns }],
});

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'var/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  // Type-aware rules: a promise nobody awaits loses its rejection; a switch
  // over a union that misses a member is a message nobody handles.
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
    },
  },
  {
    files: ['runtime/**/*.ts'],
    rules: restrict([
      above(['actors', 'supervisor', 'sandbox'], 'runtime/ imports nothing above it'),
    ]),
  },
  {
    files: ['sandbox/**/*.ts'],
    rules: restrict([above(['actors', 'supervisor'], 'sandbox/ imports only runtime/')]),
  },
  {
    files: ['supervisor/**/*.ts'],
    rules: restrict([
      above(['actors'], 'the supervisor never imports an actor (it names actor modules by URL)'),
    ]),
  },
  ...ACTORS.map((a) => ({
    files: [`actors/${a}/**/*.ts`],
    rules: restrict([
      ...otherActors(a),
      above(['supervisor'], 'an actor never imports the supervisor'),
    ]),
  })),
  // Actors serve and ask through their declared protocols (runtime/protocol/):
  // the untyped forms are for test actors only.
  {
    files: ['actors/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='MeshError']",
          message: 'make errors with the factories in runtime/errors.ts (E.ERR_*)',
        },
        {
          selector:
            "CallExpression[callee.object.type='ThisExpression'][callee.property.name=/^(on|askAny|tellAny)$/]",
          message: 'declare the action in runtime/protocol/ and use serve/ask/tell',
        },
      ],
    },
  },
  // Errors come from the factories in runtime/errors.ts (E.ERR_*, or a named one).
  {
    files: ['runtime/**/*.ts', 'supervisor/**/*.ts', 'sandbox/**/*.ts'],
    ignores: ['runtime/errors.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='MeshError']",
          message: 'make errors with the factories in runtime/errors.ts (E.ERR_*)',
        },
      ],
    },
  },
);
