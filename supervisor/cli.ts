#!/usr/bin/env node
/**
 * The `meshnode` command. This verbs: `start` (foreground; what
 * systemd runs) and `help`. Arguments are parsed by node:util's parseArgs
 * (strict: unknown flags are usage errors).
 *
 * Exit codes: 0 ok, 1 the node failed or escalated, 2 usage error,
 * 130 forced stop by a second signal.
 */
import { parseArgs } from 'node:util';
import { runDaemon } from './daemon.js';

const EXIT_USAGE = 2;
const USAGE = `usage: meshnode <command> [options]

commands:
  start [--config FILE]   run the node in the foreground (embedded defaults without --config)
  help                    show this text

options:
  -c, --config FILE       TOML config file
  -h, --help              show this text
`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    process.stderr.write(`meshnode: ${(err as Error).message}\n${USAGE}`);
    return EXIT_USAGE;
  }
  const [command, ...rest] = parsed.positionals;
  if (parsed.values.help || command === 'help' || command === undefined) {
    process.stdout.write(USAGE);
    return command === undefined && !parsed.values.help ? EXIT_USAGE : 0;
  }
  if (command !== 'start' || rest.length > 0) {
    process.stderr.write(`meshnode: unknown command ${[command, ...rest].join(' ')}\n${USAGE}`);
    return EXIT_USAGE;
  }
  return runDaemon(parsed.values.config ? { configPath: parsed.values.config } : {});
}

process.exitCode = await main(process.argv.slice(2));
