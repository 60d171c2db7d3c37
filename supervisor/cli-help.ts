/**
 * The CLI's words about itself: the command list (`meshnode help`), one
 * command's help with its options' defaults and valid values and examples
 * (`meshnode offer --help`), typo suggestions, and the bash completion
 * script (`meshnode completion bash`), all drawn from the one table in
 * cli-commands.ts so they cannot disagree with what the parser accepts.
 */
import { LEVELS } from '../runtime/log.js';
import { COMMANDS, GROUPS } from './cli-commands.js';
import { BUILTIN_ACTORS } from './config-specs.js';
import type { Command, OptionSpec } from './cli-commands.js';

/** The options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  config: {
    type: 'string',
    short: 'c',
    arg: 'FILE',
    help: 'TOML config file; else $MESHNODE_CONFIG, /etc/meshnode/meshnode.toml, ./meshnode.toml, or the embedded defaults (MESHNODE_CONFIG= forces them)',
  },
  socket: { type: 'string', arg: 'PATH', help: 'admin socket (default: from the config)' },
  json: {
    type: 'boolean',
    help: 'print one JSON envelope {"v":1,"ok":…} (one per line with -f, --watch)',
  },
  help: { type: 'boolean', short: 'h', help: 'help for a command' },
};

/** The options of --watch, on the commands that take it. */
export const WATCH_OPTIONS: Record<string, OptionSpec> = {
  watch: {
    type: 'boolean',
    short: 'w',
    help: 'redraw every --interval until Ctrl-C, like watch(1)',
  },
  interval: {
    type: 'string',
    arg: 'DURATION',
    help: 'how often --watch redraws',
    default: '2s',
    duration: true,
  },
};

export const EXIT_CODES =
  'exit codes: 0 ok, 1 node failed, 2 usage, 3 node not running, 4 refused, 5 internal error';

export function usage(): string {
  const lines = Object.values(COMMANDS).map((c) => `  ${c.usage.padEnd(44)} ${c.summary}`);
  return `usage: meshnode <command> [options]

commands:
${lines.join('\n')}

options (every command):
${optionLines(GLOBAL_OPTIONS)}

${EXIT_CODES}
run 'meshnode COMMAND --help' for a command's options, defaults and examples
`;
}

/** The commands of a group (`meshnode journal`). */
export function groupHelp(group: string): string {
  const cmds = Object.entries(COMMANDS).filter(([n]) => n.startsWith(`${group} `));
  const width = Math.max(...cmds.map(([, c]) => c.usage.length));
  return cmds.map(([, c]) => `  meshnode ${c.usage.padEnd(width)}  ${c.summary}`).join('\n');
}

/** One command's help: usage, what it does, each option with its default and values, examples. */
export function commandHelp(cmd: Command): string {
  const own = optionsOf(cmd);
  const parts = [`usage: meshnode ${cmd.usage}`, '', cmd.summary];
  if (Object.keys(own).length > 0) parts.push('', 'options:', optionLines(own));
  parts.push('', 'global options:', optionLines(GLOBAL_OPTIONS));
  if (cmd.examples?.length) {
    parts.push('', 'examples:', ...cmd.examples.map((e) => `  ${e}`));
  }
  return `${parts.join('\n')}\n`;
}

/** A command's own options, --watch's included. */
export function optionsOf(cmd: Command): Record<string, OptionSpec> {
  return { ...cmd.options, ...(cmd.watch ? WATCH_OPTIONS : {}) };
}

function optionLines(options: Record<string, OptionSpec>): string {
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.arg ? ` ${o.arg}` : ''}`;
    const notes = [
      o.required ? 'required' : '',
      o.values ? `one of ${o.values.join(', ')}` : '',
      o.default !== undefined ? `default ${o.default}` : '',
    ].filter(Boolean);
    return [flag, `${o.help}${notes.length ? ` (${notes.join('; ')})` : ''}`] as const;
  });
  const width = Math.min(28, Math.max(...rows.map(([f]) => f.length)));
  return rows
    .map(([f, h]) =>
      f.length > width ? `  ${f}\n  ${''.padEnd(width)}  ${h}` : `  ${f.padEnd(width)}  ${h}`,
    )
    .join('\n');
}

/** The candidate nearest to `word` by edit distance, if it is near enough to be a typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best;
}

/**
 * The bash completion: commands (two-word groups included), then the
 * command's options; actor names for the verbs that take one. Generated
 * from the table, so a new verb completes without editing this.
 */
export function bashCompletion(): string {
  const firsts = [
    ...new Set(Object.keys(COMMANDS).map((n) => n.split(' ')[0]!)),
    'help',
    'version',
  ];
  const cases = Object.entries(COMMANDS).map(([name, cmd]) => {
    const flags = [
      ...Object.entries({ ...optionsOf(cmd), ...GLOBAL_OPTIONS }).map(([n]) => `--${n}`),
    ].join(' ');
    return `    "${name}") opts="${flags}" ;;`;
  });
  const groups = GROUPS.map(
    (g) =>
      `    ${g}) if [ "$COMP_CWORD" -eq 2 ]; then COMPREPLY=( $(compgen -W "${Object.keys(COMMANDS)
        .filter((n) => n.startsWith(`${g} `))
        .map((n) => n.split(' ')[1])
        .join(' ')}" -- "$cur") ); return; fi; cmd="${g} \${COMP_WORDS[2]}" ;;`,
  );
  return `# bash completion for meshnode (generated by: meshnode completion bash)
_meshnode() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmd opts
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${firsts.join(' ')}" -- "$cur") )
    return
  fi
  cmd="\${COMP_WORDS[1]}"
  case "$cmd" in
${groups.join('\n')}
  esac
  case "$cmd" in
    restart|kill|inspect|trace)
      if [ "$COMP_CWORD" -eq 2 ] && [[ "$cur" != -* ]]; then
        COMPREPLY=( $(compgen -W "${BUILTIN_ACTORS.join(' ')}" -- "$cur") ); return
      fi ;;
    log-level)
      if [ "$COMP_CWORD" -eq 2 ]; then
        COMPREPLY=( $(compgen -W "${LEVELS.join(' ')}" -- "$cur") ); return
      fi ;;
  esac
  case "$cmd" in
${cases.join('\n')}
    *) opts="" ;;
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "$opts" -- "$cur") ); return; fi
  COMPREPLY=( $(compgen -f -- "$cur") )
}
complete -F _meshnode meshnode
`;
}

/** Edit distance with a swap of two neighbours as one edit (`stauts` is one from `status`). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
