/**
 * The node process: config → state directory → supervisor → metrics, and
 * the signal handling systemd and a terminal rely on.
 *
 * Signals: the first SIGTERM/SIGINT starts a graceful stop (children in
 * reverse start order, each within its shutdown timeout) and the process
 * exits 0 once it is done. A second signal forces exit (code 130).
 *
 * A signal delivered twice for one keypress is not a second request: with
 * `npm start`, Ctrl-C reaches node from the terminal and again from npm's
 * forwarding. Signals within DUPLICATE_SIGNAL_MS of the first are one.
 */
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { invalidConfig } from '../runtime/errors.js';
import { createRootLogger } from './logger.js';
import { AdminServer, checkAdminOptions } from './admin.js';
import { adminSocketPath, loadConfig } from './config.js';
import { supervisorInput } from './config-specs.js';
import type { Config } from './config.js';
import { createMetricsRegistry, serveMetrics } from './metrics.js';
import { lockStateDir } from './state-lock.js';
import type { StateLock } from './state-lock.js';
import { Supervisor } from './supervisor.js';

/** Two deliveries closer than this are one operator action (see header). */
const DUPLICATE_SIGNAL_MS = 300;
/** Exit code of a forced stop, as a shell reports death by SIGINT. */
export const EXIT_FORCED = 130;
/** A config that does not load: the command line's fault (the CLI's exit 2). */
const EXIT_USAGE = 2;

export interface DaemonOptions {
  configPath?: string;
}

/** Run the node until it stops; resolves with the process exit code. */
export async function runDaemon(options: DaemonOptions = {}): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(options.configPath);
  } catch (err) {
    return configRefused(err);
  }
  const log = createRootLogger(config.node.log_level);
  const stateDir = resolve(config.node.state_dir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  let lock: StateLock;
  try {
    lock = lockStateDir(stateDir);
  } catch (err) {
    log.fatal({ err, code: (err as { code?: string }).code }, 'state directory in use');
    return 1;
  }
  process.once('exit', () => lock.release());
  log.info({ stateDir, config: options.configPath ?? '(embedded defaults)' }, 'meshnode starting');

  const adminOptions = {
    socketPath: adminSocketPath(config),
    group: config.admin.group,
    auditPath: join(stateDir, 'audit', 'admin.log'),
  };
  try {
    checkAdminOptions(adminOptions);
  } catch (err) {
    lock.release();
    return configRefused(err);
  }
  const sup = new Supervisor(supervisorInput(config), { logger: log });
  const removeSignals = handleSignals(sup, log);
  let metrics: Server | null = null;
  let admin: AdminServer | null = null;
  try {
    await sup.start();
    admin = new AdminServer(sup, adminOptions);
    await admin.listen().catch((err: Error) => {
      throw invalidConfig(`admin.socket ${adminOptions.socketPath}: ${err.message}`, err);
    });
    log.info({ socket: adminOptions.socketPath }, 'admin socket listening');
    if (config.metrics.listen) {
      metrics = await serveMetrics(createMetricsRegistry(sup), config.metrics.listen, sup).catch(
        (err: Error) => {
          throw invalidConfig(`metrics.listen ${config.metrics.listen}: ${err.message}`, err);
        },
      );
      log.info({ listen: config.metrics.listen }, 'metrics listening');
    }
    log.info({}, 'meshnode ready');
  } catch (err) {
    log.fatal({ err, code: (err as { code?: string }).code }, 'meshnode failed to start');
    await admin?.close().catch(() => {});
    await sup.stop('start failed');
    removeSignals();
    lock.release();
    return 1;
  }
  const result = await sup.done;
  metrics?.close();
  await admin.close().catch(() => {});
  removeSignals();
  lock.release();
  log.info(result, 'meshnode stopped');
  return result.code;
}

function handleSignals(sup: Supervisor, log: Logger): () => void {
  let first = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (first === 0) {
      first = now;
      log.info({ signal }, 'signal received; stopping gracefully (send again to force)');
      void sup.stop(signal);
      return;
    }
    if (now - first < DUPLICATE_SIGNAL_MS) return;
    log.fatal({ signal }, 'second signal; forcing exit');
    process.exit(EXIT_FORCED);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

/**
 * A config that cannot run: a line for the operator, as every other command
 * prints it (not a JSON log record with a stack), and the usage exit code.
 */
function configRefused(err: unknown): number {
  const code = (err as { code?: string }).code ?? 'ERR_INVALID_CONFIG';
  process.stderr.write(`meshnode: ${code}: ${(err as Error).message}\n`);
  return EXIT_USAGE;
}
