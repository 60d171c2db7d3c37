/**
 * Options every piscina pool of meshnode starts from (`{ ...poolDefaults, filename, … }`),
 * so a new pool cannot miss them. A plain object, not a factory: the journal
 * imports piscina only when it first needs its pool.
 *
 * piscina loads a task module with `require()` first and falls back to
 * `import()`. On Node 20.19+ `require()` of an ES module is on by default,
 * and when a fresh pool thread gets two tasks at once it requires the
 * module while the other task's import of it is still linking: Node 20
 * then aborts the whole process ("FATAL ERROR: v8::Module::IsGraphAsync
 * must be used on an instantiated module", nodejs/node#55782). Seen twice in
 * one CI run (journal verify pool, sandbox pool). With require(esm) off in
 * the pool's threads, `require()` fails at once with ERR_REQUIRE_ESM and
 * every load goes through `import()`, which is safe to race.
 *
 * Not `...process.execArgv`: a worker refuses process-wide options such as
 * `--inspect` (the soak suite runs nodes under it).
 */
export const poolDefaults: { readonly execArgv: string[] } = Object.freeze({
  execArgv: ['--no-experimental-require-module'],
});
