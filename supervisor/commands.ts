/**
 * The `meshnode` command. `start` runs the node in the foreground (what
 * systemd runs); `init` prepares a state directory; every other command
 * talks to a running node over its admin socket. Arguments are parsed by
 * node:util's parseArgs (strict: unknown flags are usage errors).
 *
 * `--json` prints one envelope: {"v":1,"ok":true,"result":…} or
 * {"v":1,"ok":false,"error":{"code":"ERR_…","message":"…"}}.
 *
 * Exit codes (EXIT below): 0 ok, 1 the node failed or escalated (start),
 * 2 usage error, 3 node not running, 4 refused by the node, 5 internal
 * error, 130 interrupted (a job cancelled by Ctrl-C; a forced stop by a
 * second signal).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { E, MeshError } from '../runtime/errors.js';
import { FOUND_REQUEST_FILE } from '../runtime/types.js';
import { AdminClient } from './admin-client.js';
import { COMMANDS, DURATION, GROUPS, durationMs } from './cli-commands.js';
import type { Command, OptionSpec, Values } from './cli-commands.js';
import { follow, watch } from './cli-follow.js';
import { verifyCommand } from './cli-job.js';
import {
  GLOBAL_OPTIONS,
  bashCompletion,
  closest,
  commandHelp,
  groupHelp,
  optionsOf,
  usage,
} from './cli-help.js';
import { adminSocketPath, findConfig, loadConfig } from './config.js';
import { PACKAGE_VERSION } from './config-values.js';
import { errorLine, okLine } from './cli-format.js';
import { render } from './cli-render.js';

export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  notRunning: 3,
  refused: 4,
  internal: 5,
  /** Interrupted (Ctrl-C) before the work was done: a cancelled job, a forced stop. */
  interrupted: 130,
} as const;
/** What a command that printed as it went returns: nothing more to print. */
const SILENT = Symbol('printed');

export async function main(argv: string[]): Promise<number> {
  const [first, second] = argv;
  const name =
    first !== undefined && GROUPS.includes(first) && second && !second.startsWith('-')
      ? `${first} ${second}`
      : first;
  // Known before parsing, so even a usage error is answered as an envelope.
  const json = argv.includes('--json');
  if (name === undefined) return usageError('no command', json);
  if (name === 'help' || name === '--help' || name === '-h') {
    const about =
      argv[1] === undefined
        ? undefined
        : (COMMANDS[argv.slice(1, 3).join(' ')] ?? COMMANDS[argv[1]]);
    process.stdout.write(about ? commandHelp(about) : usage());
    return EXIT.ok;
  }
  if (name === 'version' || name === '--version' || name === '-V') {
    const v = { version: PACKAGE_VERSION, node: process.versions.node };
    process.stdout.write(json ? okLine(v) : `meshnode ${v.version} (node ${v.node})\n`);
    return EXIT.ok;
  }
  if (name.startsWith('-')) return usageError(`a command comes first, before ${name}`, json);
  if (GROUPS.includes(name)) {
    // `journal`, `journal --help`: the group's commands, not "unknown command".
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(`${name} commands:\n${groupHelp(name)}\n`);
      return EXIT.ok;
    }
    const near = second ? closest(`${name} ${second}`, Object.keys(COMMANDS)) : undefined;
    return usageError(
      second && !second.startsWith('-')
        ? `unknown command ${name} ${second}${near ? ` (did you mean ${near}?)` : ''}`
        : `${name} needs a command:\n${groupHelp(name)}`,
      json,
      undefined,
      true,
    );
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    const near = closest(name, [...Object.keys(COMMANDS), ...GROUPS]);
    return usageError(
      `unknown command ${name}${near ? ` (did you mean ${near}?)` : ''}`,
      json,
      undefined,
      true,
    );
  }
  const specs = { ...GLOBAL_OPTIONS, ...optionsOf(cmd) };
  const rest = argv.slice(name.split(' ').length);
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: Object.fromEntries(
        Object.entries(specs).map(([n, o]) => [
          n,
          o.short ? { type: o.type, short: o.short } : { type: o.type },
        ]),
      ),
    });
  } catch (err) {
    return usageError(argsProblem(err, specs), json, cmd);
  }
  const values = parsed.values as Values;
  if (values.help) {
    process.stdout.write(commandHelp(cmd));
    return EXIT.ok;
  }
  const wantArgs = cmd.args ?? [];
  if (parsed.positionals.length !== wantArgs.length) {
    return usageError(
      `${name} takes ${wantArgs.length ? wantArgs.join(' ') : 'no arguments'}`,
      json,
      cmd,
    );
  }
  const problem = checkValues(specs, values);
  if (problem) return usageError(problem, json, cmd);
  const configPath = findConfig(values.config as string | undefined);
  // The daemon and the crypto are loaded only by the commands that use them:
  // every other command is a short-lived client that should start fast.
  switch (name) {
    case 'start': {
      const { runDaemon } = await import('./daemon.js');
      if (values['adopt-table']) process.env.MESHNODE_NFT_ADOPT_TABLE = '1';
      return runDaemon(configPath ? { configPath } : {});
    }
    case 'config check': {
      const file = parsed.positionals[0]!;
      return report(
        json,
        () => {
          loadConfig(file);
          return Promise.resolve({ file, valid: true });
        },
        name,
      );
    }
    case 'init': {
      const newMesh = values['new-mesh'];
      const found =
        typeof newMesh === 'string'
          ? { name: newMesh, admission: values.open ? ('open' as const) : ('closed' as const) }
          : undefined;
      return report(json, () => init(configPath, found), name);
    }
    case 'completion':
      if (parsed.positionals[0] !== 'bash') return usageError('completion knows bash', json, cmd);
      process.stdout.write(bashCompletion());
      return EXIT.ok;
    case 'console': {
      let socket: string;
      try {
        socket = await socketFor(values);
      } catch (err) {
        return usageError((err as Error).message, json, cmd);
      }
      const { runConsole } = await import('./console.js');
      return runConsole(socket);
    }
    case 'doctor': {
      const { runDoctor } = await import('./doctor.js');
      return runDoctor(configPath, json);
    }
    case 'journal tail':
      return withClient(json, values, name, (client, signal) =>
        follow(client, values, json, write, signal),
      );
    case 'journal verify':
      return withClient(json, values, name, async (client, signal) => {
        const end = await verifyCommand((m, p) => client.call(m, p), json, write, signal);
        return end === 'ok' ? EXIT.ok : end === 'broken' ? EXIT.failed : EXIT.interrupted;
      });
  }
  const once = (client: AdminClient) => {
    if (cmd.run) return cmd.run((m, p) => client.call(m, p), parsed.positionals, values);
    const [method, params] = cmd.request!(parsed.positionals, values);
    return client.call(method, params);
  };
  if (values.watch) {
    return withClient(json, values, name, (client, signal) =>
      watch(
        () => once(client),
        {
          intervalMs: durationMs(values.interval as string),
          title: `meshnode ${argv.filter((a) => a !== '--watch' && a !== '-w').join(' ')}`,
          print: (result) => (json ? okLine(result) : render(name, result)),
          clear: !json && process.stdout.isTTY === true,
          write,
        },
        signal,
      ),
    );
  }
  return report(
    json,
    async () => {
      const client = await AdminClient.connect(await socketFor(values));
      try {
        return await once(client);
      } finally {
        client.close();
      }
    },
    name,
  );
}

/**
 * Defaults applied, then each option checked once against its spec: a
 * whole number, a duration, one of its values, present when required.
 * The first problem, in the option's own words; undefined when all hold.
 */
function checkValues(specs: Record<string, OptionSpec>, values: Values): string | undefined {
  for (const [n, o] of Object.entries(specs)) {
    if (values[n] === undefined && o.default !== undefined) values[n] = o.default;
  }
  for (const [n, o] of Object.entries(specs)) {
    const v = values[n];
    if (v === undefined) {
      if (o.required) return `--${n} is required`;
      continue;
    }
    if (typeof v !== 'string') continue;
    if (o.numeric && !/^\d{1,15}$/.test(v)) return `--${n} must be a whole number`;
    if (o.duration && !DURATION.test(v))
      return `--${n} must be a duration like 90s, 30m, 24h or 7d`;
    if (o.values && !o.values.includes(v)) return `--${n} must be one of ${o.values.join(', ')}`;
  }
  return undefined;
}

/**
 * Connect, run `work` (which prints as it goes), close. Errors are reported
 * as for a one-shot command; Ctrl-C (SIGINT) ends the work with exit 0,
 * as `tail -f` and `watch` do.
 */
async function withClient(
  json: boolean,
  values: Values,
  name: string,
  work: (client: AdminClient, signal: AbortSignal) => Promise<number | void>,
): Promise<number> {
  let exit: number | void = EXIT.ok;
  const stop = new AbortController();
  const onInt = () => stop.abort();
  process.once('SIGINT', onInt);
  try {
    const code = await report(
      json,
      async () => {
        const client = await AdminClient.connect(await socketFor(values));
        try {
          exit = await work(client, stop.signal);
        } catch (err) {
          // An ask cut short by our own Ctrl-C is the end asked for, not a failure.
          if (!stop.signal.aborted) throw err;
        } finally {
          client.close();
        }
        return SILENT;
      },
      name,
    );
    return code !== EXIT.ok ? code : (exit ?? EXIT.ok);
  } finally {
    process.off('SIGINT', onInt);
  }
}

/** stdout, for the commands that print as they go. */
function write(text: string): void {
  process.stdout.write(text);
}

/** Run `work` and print its result (or error) as text or the JSON envelope; returns the exit code. */
async function report(json: boolean, work: () => Promise<unknown>, name = ''): Promise<number> {
  try {
    const result = await work();
    if (result === SILENT) return EXIT.ok;
    process.stdout.write(json ? okLine(result) : render(name, result));
    return EXIT.ok;
  } catch (err) {
    const code = err instanceof MeshError ? err.code : 'ERR_INTERNAL';
    const message = (err as Error).message;
    if (json) process.stdout.write(errorLine(code, message));
    else process.stderr.write(`meshnode: ${code}: ${message}\n`);
    if (code === 'ERR_NOT_RUNNING') return EXIT.notRunning;
    // A config file that does not load is the command line's fault, not the node's.
    if (code === 'ERR_INVALID_CONFIG') return EXIT.usage;
    return err instanceof MeshError && code !== 'ERR_ADMIN' ? EXIT.refused : EXIT.internal;
  }
}

async function socketFor(values: Values): Promise<string> {
  if (typeof values.socket === 'string') return resolve(values.socket);
  return adminSocketPath(loadConfig(findConfig(values.config as string | undefined)));
}

/**
 * State directory (0700) and node key (0600); an existing key is kept, never
 * replaced. `--new-mesh` leaves a founding request the journal carries out
 * at the node's first start (only the journal writer appends).
 */
async function init(
  configPath: string | undefined,
  found?: { name: string; admission: 'open' | 'closed' },
): Promise<Record<string, unknown>> {
  const { generateKeyPair, readKeyFile, writeKeyFile } = await import('../runtime/crypto/index.js');
  const config = loadConfig(configPath);
  const stateDir = resolve(config.node.state_dir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const keyPath = join(stateDir, 'node.key');
  const created = !existsSync(keyPath);
  const key = created ? generateKeyPair() : await readKeyFile(keyPath);
  if (created) await writeKeyFile(keyPath, key);
  if (configPath && !existsSync(configPath)) writeFileSync(configPath, '', { mode: 0o640 });
  if (found) {
    if (!/^[a-z][a-z0-9_]{0,31}$/.test(found.name)) {
      throw E.ERR_BAD_REQUEST('--new-mesh NAME must match ^[a-z][a-z0-9_]{0,31}$');
    }
    writeFileSync(join(stateDir, FOUND_REQUEST_FILE), `${JSON.stringify(found)}\n`, {
      mode: 0o600,
    });
  }
  return {
    stateDir,
    keyFile: keyPath,
    did: key.did,
    created,
    ...(found ? { newMesh: found } : {}),
  };
}

/**
 * A usage error: the message, then the command's usage line, or (`brief`)
 * a pointer to `meshnode help` rather than every command (a typo should not
 * scroll the screen).
 */
function usageError(message: string, json: boolean, cmd?: Command, brief = false): number {
  if (json) process.stdout.write(errorLine('ERR_USAGE', message));
  const after = cmd
    ? `usage: meshnode ${cmd.usage}\n`
    : brief
      ? "run 'meshnode help' for every command\n"
      : usage();
  process.stderr.write(`meshnode: ${message}\n${after}`);
  return EXIT.usage;
}

/** parseArgs' complaint in the CLI's words, with a suggestion for a mistyped option. */
function argsProblem(err: unknown, options: Record<string, unknown>): string {
  const e = err as { code?: string; message: string };
  const flag = /'(--?[^' ]+)/.exec(e.message)?.[1] ?? '';
  if (e.code?.endsWith('_PARSE_ARGS_UNKNOWN_OPTION')) {
    const near = closest(flag.replace(/^-+/, ''), Object.keys(options));
    return `unknown option ${flag}${near ? ` (did you mean --${near}?)` : ''}`;
  }
  if (/argument missing/.test(e.message)) return `option ${flag} needs a value`;
  // `-n -5`: parseArgs will not take a dash-led value after a space.
  if (/argument is ambiguous/.test(e.message)) {
    return `option ${flag} needs a value (one that starts with a dash goes as ${flag}=VALUE)`;
  }
  if (/does not take an argument/.test(e.message)) return `option ${flag} takes no value`;
  return e.message;
}
