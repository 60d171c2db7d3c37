/**
 * Worker-thread bootstrap: the first module every actor's worker runs.
 * It builds the actor's data plane (Endpoint + Dispatcher), imports the
 * actor module named in workerData, and exposes the control plane
 * (ControlApi) to the supervisor with comlink.
 *
 * Kept small on purpose: everything imported here is paid on every
 * (re)start, and restart latency is a budgeted figure.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { ActorClass } from './actor.js';
import { Dispatcher } from './dispatcher.js';
import { Endpoint } from './endpoint.js';
import { createForwardingLogger } from './log.js';
import { MetricsRegistry } from './metrics.js';
import type { ActorInspect, ActorStats, ControlApi, WorkerBoot } from './types.js';

if (!parentPort) throw new Error('runtime/worker-main.js must run on a worker thread');
const boot = workerData as WorkerBoot;

const log = createForwardingLogger(boot.logPort, boot.logLevel);
const endpoint = new Endpoint({
  name: boot.name,
  peers: boot.peers,
  askTimeoutMs: boot.askTimeoutMs,
  queueLimit: boot.mailbox.highWater,
});
const dispatcher = new Dispatcher(endpoint, {
  name: boot.name,
  highWater: boot.mailbox.highWater,
  concurrency: boot.mailbox.concurrency,
});
dispatcher.onTellError = (action, err) => log.error({ action, err }, 'tell handler failed');
const metrics = new MetricsRegistry();

const mod = (await import(boot.moduleUrl)) as { default?: ActorClass };
if (typeof mod.default !== 'function') {
  throw new TypeError(`${boot.moduleUrl} must default-export a class extending Actor`);
}
const actor = new mod.default({
  name: boot.name,
  options: boot.options,
  endpoint,
  dispatcher,
  log,
  metrics,
  exit: () => process.exit(0),
});

const control: ControlApi = {
  init: async () => {
    await actor.init();
    dispatcher.open();
  },
  connect: (peer: string, port: MessagePort) => endpoint.attach(peer, port),
  peerDown: (peer: string, final: boolean) => endpoint.peerDown(peer, final),
  health: () => ({ ok: true, ts: Date.now() }),
  stats,
  inspect: async (): Promise<ActorInspect> => ({
    stats: stats(),
    links: endpoint.describeLinks(),
    actions: dispatcher.describeRoutes(),
    state: actor.inspectState(),
  }),
  stop: async (deadlineMs: number) => {
    // Drain what was accepted, but never past the deadline: the supervisor
    // terminates us at its shutdown timeout anyway, and the stop hook must
    // get its turn before that.
    // The stop hook gets what is left of the same deadline; past it the
    // stop fails (the supervisor logs it and terminates the worker).
    let timer: NodeJS.Timeout | undefined;
    let late = false;
    const deadline = new Promise<void>(
      (resolve) => (timer = setTimeout(() => resolve(void (late = true)), deadlineMs)),
    );
    try {
      await Promise.race([dispatcher.drain(), deadline]);
      await Promise.race([actor.stop(), deadline]);
    } finally {
      clearTimeout(timer);
      endpoint.close();
    }
    if (late) throw new Error(`stop did not finish within ${deadlineMs} ms`);
  },
};
Comlink.expose(control, nodeEndpoint(parentPort as never));

function stats(): ActorStats {
  const mem = process.memoryUsage();
  return {
    name: boot.name,
    received: dispatcher.received,
    handled: dispatcher.handled,
    rejected: dispatcher.rejected,
    deadLetters: endpoint.deadLetters + dispatcher.droppedTells,
    depth: dispatcher.depth,
    running: dispatcher.inFlight,
    highWater: boot.mailbox.highWater,
    latency: dispatcher.latency.snapshot(),
    heapUsed: mem.heapUsed,
    heapTotal: mem.heapTotal,
    metrics: metrics.snapshot(),
    ...(dispatcher.lastError ? { lastError: dispatcher.lastError } : {}),
  };
}
