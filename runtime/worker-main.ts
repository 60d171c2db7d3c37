/**
 * Worker-thread bootstrap: the first module every actor's worker runs.
 * It exposes the control plane (ControlApi, comlink) at once, then boots:
 * builds the actor's data plane (Endpoint + Dispatcher) and imports the
 * actor module.
 *
 * Two ways in:
 *  - cold: workerData is the WorkerBoot; the worker boots itself;
 *  - warm spare: workerData is `{ standby: true }`; the worker loads this
 *    runtime and waits for the supervisor's `boot(WorkerBoot)` call. Thread
 *    and runtime start-up are then already paid when an actor must restart.
 * Control calls that need the actor wait for the boot to finish.
 *
 * Kept small on purpose: everything imported here is paid on every
 * (re)start, and restart latency is a budgeted figure.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { Actor, ActorClass } from './actor.js';
import { Dispatcher } from './dispatcher.js';
import { Endpoint } from './endpoint.js';
import { createForwardingLogger } from './log.js';
import { MetricsRegistry } from './metrics.js';
import { E } from './errors.js';
import type { ActorInspect, ActorStats, ControlApi, TraceRecord, WorkerBoot } from './types.js';

if (!parentPort) throw new Error('runtime/worker-main.js must run on a worker thread');

interface Booted {
  boot: WorkerBoot;
  endpoint: Endpoint;
  dispatcher: Dispatcher;
  metrics: MetricsRegistry;
  actor: Actor;
  log: ReturnType<typeof createForwardingLogger>;
}

/** A trace is for a human watching: bounded in length and in time. */
const MAX_TRACE_COUNT = 10_000;
const MAX_TRACE_MS = 10 * 60_000;

let booting: Promise<Booted> | null = null;
const booted = (): Promise<Booted> => booting ?? Promise.reject(new Error('worker not booted'));

const control: ControlApi = {
  boot: async (boot: WorkerBoot) => {
    booting ??= bootActor(boot);
    await booting;
  },
  init: async () => {
    const b = await booted();
    try {
      await b.actor.init();
    } catch (err) {
      // comlink carries an error's message, not its code: keep the code in it,
      // so the supervisor's ERR_ACTOR_INIT says why (say ERR_NFT_FOREIGN_TABLE).
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && err instanceof Error && !err.message.startsWith(code)) {
        err.message = `${code}: ${err.message}`;
      }
      throw err;
    }
    b.dispatcher.open();
  },
  connect: async (peer: string, port: MessagePort) => (await booted()).endpoint.attach(peer, port),
  peerDown: async (peer: string, final: boolean) => (await booted()).endpoint.peerDown(peer, final),
  health: () => ({ ok: true, ts: Date.now() }),
  setLogLevel: async (level: string) => {
    const b = await booted();
    b.log.setLevel(level);
    observeAtLevel(b.dispatcher, b.log);
  },
  trace: async (count: number, ms: number) => {
    const { dispatcher } = await booted();
    if (dispatcher.tracer) throw E.ERR_BAD_REQUEST('a trace of this actor is running');
    const out: TraceRecord[] = [];
    return new Promise<TraceRecord[]>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        dispatcher.tracer = null;
        resolve(out);
      };
      const timer = setTimeout(done, Math.min(Math.max(ms, 1), MAX_TRACE_MS));
      dispatcher.tracer = (rec) => {
        out.push(rec);
        if (out.length >= Math.min(Math.max(count, 1), MAX_TRACE_COUNT)) done();
      };
    });
  },
  stats: async () => stats(await booted()),
  inspect: async (): Promise<ActorInspect> => {
    const b = await booted();
    return {
      stats: stats(b),
      links: b.endpoint.describeLinks(),
      actions: b.dispatcher.describeRoutes(),
      state: b.actor.inspectState(),
    };
  },
  stop: async (deadlineMs: number) => {
    const b = await booted();
    // The stop hook gets what is left of the same deadline; past it the
    // stop fails (the supervisor logs it and terminates the worker).
    let timer: NodeJS.Timeout | undefined;
    let late = false;
    const deadline = new Promise<void>(
      (resolve) => (timer = setTimeout(() => resolve(void (late = true)), deadlineMs)),
    );
    try {
      await Promise.race([b.dispatcher.drain(), deadline]);
      await Promise.race([b.actor.stop(), deadline]);
    } finally {
      clearTimeout(timer);
      b.endpoint.close();
    }
    if (late) throw new Error(`stop did not finish within ${deadlineMs} ms`);
  },
};
Comlink.expose(control, nodeEndpoint(parentPort as never));
if (!(workerData as { standby?: boolean }).standby) {
  // A boot failure (say, the module does not load) is reported by init().
  control.boot(workerData as WorkerBoot).catch(() => {});
}

async function bootActor(boot: WorkerBoot): Promise<Booted> {
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
  observeAtLevel(dispatcher, log);
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
  return { boot, endpoint, dispatcher, metrics, actor, log };
}

/**
 * Messages in the log at the levels that ask for them: at trace every
 * message handled (who sent it, the action, how long, the outcome); at
 * debug the refused and failed ones. Above debug nothing is built.
 */
function observeAtLevel(dispatcher: Dispatcher, log: Booted['log']): void {
  if (log.enabled('trace')) dispatcher.observer = (rec) => log.trace({ ...rec }, 'message handled');
  else if (log.enabled('debug')) {
    dispatcher.observer = (rec) => {
      if (rec.outcome !== 'ok') log.debug({ ...rec }, 'message failed');
    };
  } else dispatcher.observer = null;
}

function stats({ boot, endpoint, dispatcher, metrics }: Booted): ActorStats {
  const mem = process.memoryUsage();
  const elu = performance.eventLoopUtilization();
  return {
    name: boot.name,
    received: dispatcher.received,
    handled: dispatcher.handled,
    observed: dispatcher.observed,
    rejected: dispatcher.rejected,
    deadLetters: endpoint.deadLetters + dispatcher.droppedTells,
    depth: dispatcher.depth,
    running: dispatcher.inFlight,
    highWater: boot.mailbox.highWater,
    latency: dispatcher.latency.snapshot(),
    heapUsed: mem.heapUsed,
    heapTotal: mem.heapTotal,
    loop: { activeMs: elu.active, idleMs: elu.idle },
    metrics: metrics.snapshot(),
    ...(dispatcher.lastError ? { lastError: dispatcher.lastError } : {}),
    ...(dispatcher.recentErrors.length > 0 ? { recentErrors: [...dispatcher.recentErrors] } : {}),
  };
}
