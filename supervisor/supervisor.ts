/**
 * The supervisor: spawns each child spec's actor on its own worker thread,
 * wires the channels the topology allows, watches liveness, and restarts
 * with OTP semantics (restart types, strategies, intensity).
 *
 * Concurrency model: every state change (start, failure handling, operator
 * restart, stop) runs as one operation on a serial queue, as an OTP
 * supervisor handles one message at a time. Worker 'exit' events only
 * enqueue work, so two crashes at once cannot interleave their restarts.
 *
 * What settles pending asks when a worker dies is not this file: the dead
 * worker's ports close and each endpoint rejects its in-flight asks at once
 * (runtime/endpoint.ts). The supervisor then tells neighbours whether a new
 * instance will follow (`peerDown(final)`), and re-wires fresh channels to it.
 */
import { EventEmitter } from 'node:events';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import type { Logger as PinoLogger } from 'pino';
import { E, actorInit, intensity, stopping as stoppingError } from '../runtime/errors.js';
import { Endpoint } from '../runtime/endpoint.js';
import type { AskOptions } from '../runtime/endpoint.js';
import { createRootLogger, logPortOnMessage } from './logger.js';
import type { LogRecord } from '../runtime/log.js';
import { ADMIN } from '../runtime/types.js';
import type { ActorInspect, ActorStats, TraceRecord, WorkerBoot } from '../runtime/types.js';
import { parseSupervisorOptions } from './child-spec.js';
import type { ChildSpec, SupervisorOptions } from './child-spec.js';
import { ControlChannel } from './control.js';
import { recordRestart } from './intensity.js';
import { SerialLane } from '../runtime/serial-lane.js';

/** A worker that has not ended this long after terminate() never will (see terminate()). */
const TERMINATE_DEADLINE_MS = 10_000;
/** The worker bootstrap every child runs (compiled beside this file's tree). */
const WORKER_MAIN = new URL('../runtime/worker-main.js', import.meta.url);

export type ChildState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'dead';

export interface ChildInfo {
  name: string;
  state: ChildState;
  restart: ChildSpec['restart'];
  restarts: number;
  startedAt: number | null;
  threadId: number | null;
  lastExit: ExitInfo | null;
}

export interface ExitInfo {
  code: number;
  /** Why it ended: the error's message, 'heartbeat', 'stopped', 'exit(n)'. */
  reason: string;
  abnormal: boolean;
  at: number;
}

export interface SupervisorResult {
  /** Process exit code the daemon should use: 0 after a requested stop, 1 after escalation. */
  code: number;
  reason: string;
}

interface Instance {
  worker: Worker;
  /** Set when the worker is a warm spare that must be told what to become. */
  bootWith: WorkerBoot | null;
  control: ControlChannel;
  exited: Promise<ExitInfo>;
  logPort: MessagePort;
  heartbeat: NodeJS.Timeout | null;
  heartbeatInFlight: boolean;
  /** We asked it to go: its exit is not a failure. */
  expectedExit: boolean;
  killReason: string | null;
  error: Error | null;
  startedAt: number;
  /** Set by the first terminate(): later calls wait on the same one. */
  terminating?: Promise<unknown>;
}

interface Child {
  spec: ChildSpec;
  index: number;
  state: ChildState;
  instance: Instance | null;
  restarts: number;
  lastExit: ExitInfo | null;
  neighbours: string[];
}

export class Supervisor extends EventEmitter {
  readonly log: PinoLogger;
  /** Settles once the supervisor has stopped, with the exit code the process should use. */
  readonly done: Promise<SupervisorResult>;

  private readonly options: SupervisorOptions;
  private readonly children: Child[];
  private readonly byName = new Map<string, Child>();
  private readonly admin: Endpoint;
  private restartHistory: number[] = [];
  /** The warm spare, and the resourceLimits it must have (null: no spare wanted yet). */
  private spare: { worker: Worker; limits: string } | null = null;
  private spareLimits: string | null = null;
  private readonly queue = new SerialLane();
  private stopping = false;
  /** The node is shutting down (health endpoints say so). */
  get isStopping(): boolean {
    return this.stopping;
  }
  private resolveDone!: (r: SupervisorResult) => void;

  constructor(input: unknown, deps: { logger?: PinoLogger } = {}) {
    super();
    this.options = parseSupervisorOptions(input);
    this.log = deps.logger ?? createRootLogger(this.options.logLevel);
    this.children = this.options.children.map((spec, index) => ({
      spec,
      index,
      state: 'idle',
      instance: null,
      restarts: 0,
      lastExit: null,
      neighbours: neighboursOf(spec.name, this.options.topology),
    }));
    for (const c of this.children) this.byName.set(c.spec.name, c);
    this.admin = new Endpoint({
      name: ADMIN,
      peers: this.children.map((c) => c.spec.name),
      askTimeoutMs: 5000,
      queueLimit: 1024,
    });
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  /** Start every child in order; each must finish init before the next starts. */
  start(): Promise<void> {
    return this.enqueue(async () => {
      for (const child of this.children) {
        if (this.stopping) throw stoppingError('supervisor');
        try {
          await this.startChild(child);
        } catch (err) {
          // As OTP: a child that cannot start fails the supervisor's start.
          this.log.fatal({ actor: child.spec.name, err }, 'start failed; stopping');
          await this.stopAll();
          this.finish({ code: 1, reason: `start failed: ${(err as Error).message}` });
          throw err;
        }
      }
      this.log.info({ actors: this.children.map((c) => c.spec.name) }, 'all actors up');
      if (this.options.spareWorker === 'always') {
        this.spareLimits = JSON.stringify(this.children[0]?.spec.resourceLimits ?? {});
        this.refillSpare();
      }
    });
  }

  /** Graceful stop: children in reverse start order, each within its shutdown timeout. */
  stop(reason = 'requested'): Promise<SupervisorResult> {
    if (!this.stopping) {
      this.stopping = true;
      this.log.info({ reason }, 'stopping');
      void this.enqueue(async () => {
        await this.stopAll();
        this.finish({ code: 0, reason });
      });
    }
    return this.done;
  }

  /** Ask an actor as the operator (`admin`). */
  ask(to: string, action: string, data?: unknown, options?: AskOptions): Promise<unknown> {
    return this.admin.ask(to, action, data, options);
  }

  tell(to: string, action: string, data?: unknown): boolean {
    return this.admin.tell(to, action, data);
  }

  /** Operator restart: stop gracefully, start again. Counts as a restart, not toward intensity. */
  restart(name: string): Promise<void> {
    const child = this.mustGet(name);
    return this.enqueue(async () => {
      if (this.stopping) throw stoppingError('supervisor');
      if (child.instance) await this.stopChild(child, false);
      child.restarts++;
      await this.startChild(child);
    });
  }

  /** Kill a child's worker as a crash would (terminate): the restart policy applies. */
  async kill(name: string, reason = 'killed'): Promise<void> {
    const instance = this.mustGet(name).instance;
    if (!instance) return;
    instance.killReason = reason;
    await this.terminate(name, instance);
  }

  info(): ChildInfo[] {
    return this.children.map((c) => ({
      name: c.spec.name,
      state: c.state,
      restart: c.spec.restart,
      restarts: c.restarts,
      startedAt: c.instance?.startedAt ?? null,
      threadId: c.instance?.worker.threadId ?? null,
      lastExit: c.lastExit,
    }));
  }

  async stats(name: string, timeoutMs?: number): Promise<ActorStats> {
    return this.controlOf(name).stats(timeoutMs);
  }

  async inspect(name: string): Promise<ActorInspect> {
    return this.controlOf(name).inspect();
  }

  /** The next `count` messages `name` handles, for at most `ms` (the console's live trace). */
  async trace(name: string, count: number, ms: number): Promise<TraceRecord[]> {
    return this.controlOf(name).trace(count, ms);
  }

  /** Change the log level of the node and of every running actor (restarted ones boot with it). */
  async setLogLevel(level: string): Promise<void> {
    this.log.level = level;
    this.options.logLevel = level as never;
    await Promise.all(
      this.children
        .filter((c) => c.instance)
        .map((c) => c.instance!.control.setLogLevel(level).catch(() => {})),
    );
  }

  /** Thread id of the warm spare worker, or null when there is none. */
  get spareThreadId(): number | null {
    return this.spare?.worker.threadId ?? null;
  }

  /** Outstanding asks of the admin endpoint (tests assert none is left hanging). */
  get pendingAdminAsks(): number {
    return this.admin.pendingAsks;
  }

  private controlOf(name: string): ControlChannel {
    const instance = this.mustGet(name).instance;
    if (!instance) throw E.ERR_ACTOR_EXITED(`actor ${name} is not running`);
    return instance.control;
  }

  private mustGet(name: string): Child {
    const child = this.byName.get(name);
    if (!child) {
      throw E.ERR_NO_ROUTE(
        `no actor named ${name} (actors: ${[...this.byName.keys()].join(', ')})`,
      );
    }
    return child;
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    return this.queue.run(op);
  }

  private async startChild(child: Child): Promise<void> {
    const { spec } = child;
    child.state = 'starting';
    const instance = this.spawn(child);
    child.instance = instance;
    try {
      if (instance.bootWith) await instance.control.boot(instance.bootWith, spec.initTimeoutMs);
      // Wire before init, so init may ask neighbours that are already up.
      await this.wire(child, instance);
      await instance.control.init(spec.initTimeoutMs);
    } catch (err) {
      instance.expectedExit = true;
      await this.terminate(spec.name, instance);
      child.instance = null;
      child.state = 'dead';
      this.notifyPeerDown(child, false);
      throw actorInit(spec.name, err instanceof Error ? err.message : String(err));
    }
    child.state = 'running';
    this.startHeartbeat(child, instance);
    this.log.info(
      { actor: spec.name, threadId: instance.worker.threadId, restarts: child.restarts },
      'actor up',
    );
    this.emit('child:up', { name: spec.name, restarts: child.restarts });
  }

  private spawn(child: Child): Instance {
    const { spec } = child;
    const logs = new MessageChannel();
    const boot: WorkerBoot = {
      name: spec.name,
      moduleUrl: spec.moduleUrl,
      options: spec.options,
      peers: [ADMIN, ...child.neighbours],
      mailbox: spec.mailbox,
      askTimeoutMs: spec.askTimeoutMs,
      logLevel: this.options.logLevel,
      logPort: logs.port2,
    };
    const spare = this.takeSpare(JSON.stringify(spec.resourceLimits));
    const worker =
      spare ??
      new Worker(WORKER_MAIN, {
        workerData: boot,
        transferList: [logs.port2],
        resourceLimits: spec.resourceLimits,
      });
    const actorLog = this.log.child({ actor: spec.name });
    logs.port1.on('message', logPortOnMessage(actorLog) as (r: LogRecord) => void);
    const instance: Instance = {
      worker,
      bootWith: spare ? boot : null,
      control: undefined as unknown as ControlChannel,
      exited: undefined as unknown as Promise<ExitInfo>,
      logPort: logs.port1,
      heartbeat: null,
      heartbeatInFlight: false,
      expectedExit: false,
      killReason: null,
      error: null,
      startedAt: Date.now(),
    };
    // A Worker 'error' must never crash the main thread: record it, the
    // 'exit' that follows does the rest.
    worker.on('error', (err) => (instance.error = err));
    instance.exited = new Promise<ExitInfo>((resolve) => {
      worker.once('exit', (code) => {
        const info = exitInfo(instance, code);
        resolve(info);
        this.workerOnExit(child, instance, info);
      });
    });
    instance.control = new ControlChannel(spec.name, worker, instance.exited);
    return instance;
  }

  private async wire(child: Child, instance: Instance): Promise<void> {
    const connects: Promise<void>[] = [];
    const admin = new MessageChannel();
    // A cold worker answers its first control call only once it has loaded the
    // actor's module: on a busy host that took over the default 2 s (seen in
    // the network reliability suite), so the starting child gets its init budget.
    const budget = child.spec.initTimeoutMs;
    this.admin.attach(child.spec.name, admin.port2);
    connects.push(instance.control.connect(ADMIN, admin.port1, budget));
    for (const name of child.neighbours) {
      const peer = this.byName.get(name)!;
      if (peer.state !== 'running' || !peer.instance) continue;
      const { port1, port2 } = new MessageChannel();
      connects.push(instance.control.connect(name, port1, budget));
      connects.push(peer.instance.control.connect(child.spec.name, port2).catch(() => {}));
    }
    await Promise.all(connects);
  }

  private startHeartbeat(child: Child, instance: Instance): void {
    const { intervalMs, timeoutMs } = child.spec.heartbeat;
    instance.heartbeat = setInterval(() => {
      if (instance.heartbeatInFlight || instance.expectedExit) return;
      instance.heartbeatInFlight = true;
      instance.control.health(timeoutMs).then(
        () => (instance.heartbeatInFlight = false),
        () => {
          instance.heartbeatInFlight = false;
          if (child.instance !== instance || instance.expectedExit) return;
          this.log.warn({ actor: child.spec.name, timeoutMs }, 'missed heartbeat; terminating');
          instance.killReason = 'heartbeat';
          void this.terminate(child.spec.name, instance);
        },
      );
    }, intervalMs);
    instance.heartbeat.unref();
  }

  private workerOnExit(child: Child, instance: Instance, info: ExitInfo): void {
    if (instance.heartbeat) clearInterval(instance.heartbeat);
    instance.logPort.close();
    if (child.instance !== instance) return;
    child.lastExit = info;
    if (instance.expectedExit) return;
    child.instance = null;
    child.state = 'dead';
    const level = info.abnormal ? 'error' : 'info';
    this.log[level](
      { actor: child.spec.name, code: info.code, reason: info.reason },
      'actor exited',
    );
    this.emit('child:exit', { name: child.spec.name, ...info });
    void this.enqueue(() => this.childOnFailure(child, info));
  }

  private async childOnFailure(child: Child, info: ExitInfo): Promise<void> {
    if (this.stopping || child.instance) return;
    const { restart } = child.spec;
    const restartIt = restart === 'permanent' || (restart === 'transient' && info.abnormal);
    if (!restartIt) {
      child.state = 'stopped';
      this.notifyPeerDown(child, true);
      return;
    }
    const verdict = recordRestart(this.restartHistory, Date.now(), this.options.intensity);
    this.restartHistory = verdict.history;
    if (verdict.exceeded) {
      const err = intensity(this.options.intensity.maxRestarts, this.options.intensity.periodMs);
      this.log.fatal({ actor: child.spec.name, code: err.code }, err.message);
      this.emit('escalate', { name: child.spec.name });
      this.stopping = true;
      await this.stopAll();
      this.finish({ code: 1, reason: err.message });
      return;
    }
    this.notifyPeerDown(child, false);
    const group = this.restartGroup(child);
    // Stop the rest of the group in reverse start order, then start all in order.
    for (const c of [...group].reverse()) {
      // A temporary sibling will not come back: its neighbours must know (final).
      if (c !== child && c.instance) await this.stopChild(c, c.spec.restart === 'temporary');
    }
    for (const c of group) {
      if (c !== child && c.spec.restart === 'temporary') continue;
      c.restarts++;
      try {
        await this.startChild(c);
        this.emit('child:restarted', { name: c.spec.name, restarts: c.restarts });
        if (this.options.spareWorker === 'after_restart') {
          this.spareLimits = JSON.stringify(c.spec.resourceLimits);
          setImmediate(() => this.refillSpare());
        }
      } catch (err) {
        this.log.error({ actor: c.spec.name, err }, 'restart failed');
        // A failed start is another failure: it counts toward intensity.
        void this.enqueue(() =>
          this.childOnFailure(c, {
            code: 1,
            reason: 'start failed',
            abnormal: true,
            at: Date.now(),
          }),
        );
        return;
      }
    }
  }

  private restartGroup(child: Child): Child[] {
    switch (this.options.strategy) {
      case 'one_for_one':
        return [child];
      case 'rest_for_one':
        return this.children.slice(child.index);
      case 'one_for_all':
        return this.children;
    }
  }

  private async stopChild(child: Child, final: boolean): Promise<void> {
    const instance = child.instance;
    if (!instance) return;
    instance.expectedExit = true;
    child.state = 'stopping';
    if (instance.heartbeat) clearInterval(instance.heartbeat);
    const { shutdownMs } = child.spec;
    if (shutdownMs > 0) {
      try {
        await instance.control.stop(shutdownMs, shutdownMs);
      } catch (err) {
        this.log.warn({ actor: child.spec.name, err }, 'graceful stop failed; terminating');
      }
    }
    await this.terminate(child.spec.name, instance);
    child.instance = null;
    child.state = 'stopped';
    this.log.info({ actor: child.spec.name }, 'actor stopped');
    this.emit('child:stopped', { name: child.spec.name });
    this.notifyPeerDown(child, final);
  }

  /**
   * Terminate a worker, once, and make sure it really ends. A worker killed
   * inside a native call can deadlock its own teardown (seen: lmdb-js holds a
   * per-thread lock during a synchronous commit, and teardown waits on it), and
   * then terminate() never resolves and no 'exit' comes. Nothing in this
   * process can free that thread, so past the deadline the node exits hard
   * (SIGKILL of itself, after a fatal log line) and the service manager
   * restarts it whole, rather than hanging forever half-alive.
   */
  private terminate(name: string, instance: Instance): Promise<unknown> {
    instance.terminating ??= (async () => {
      const timer = setTimeout(() => {
        this.log.fatal(
          { actor: name, deadlineMs: TERMINATE_DEADLINE_MS },
          'worker did not terminate; exiting hard so the node is restarted whole',
        );
        process.kill(process.pid, 'SIGKILL');
      }, TERMINATE_DEADLINE_MS);
      try {
        await instance.worker.terminate();
        await instance.exited;
      } finally {
        clearTimeout(timer);
      }
    })();
    return instance.terminating;
  }

  /** Hand out the spare if its limits fit; a fresh one is started after the restart. */
  private takeSpare(limits: string): Worker | null {
    const spare = this.spare;
    if (!spare || spare.limits !== limits) return null;
    this.spare = null;
    spare.worker.removeAllListeners('exit');
    spare.worker.removeAllListeners('error');
    spare.worker.ref();
    return spare.worker;
  }

  private refillSpare(): void {
    if (this.stopping || this.spare || this.spareLimits === null) return;
    const limits = this.spareLimits;
    const worker = new Worker(WORKER_MAIN, {
      workerData: { standby: true },
      resourceLimits: JSON.parse(limits) as ChildSpec['resourceLimits'],
    });
    // A spare alone must not keep the process alive, nor crash it.
    worker.unref();
    worker.on('error', () => {});
    worker.once('exit', () => {
      if (this.spare?.worker === worker) this.spare = null;
    });
    this.spare = { worker, limits };
  }

  private async stopAll(): Promise<void> {
    this.spareLimits = null;
    const spare = this.spare;
    this.spare = null;
    await spare?.worker.terminate();
    for (const child of [...this.children].reverse()) {
      if (child.instance) await this.stopChild(child, true);
    }
    this.admin.close();
  }

  /** Tell everyone who held a channel to `child` that it is gone (and whether for good). */
  private notifyPeerDown(child: Child, final: boolean): void {
    const name = child.spec.name;
    this.admin.peerDown(name, final);
    for (const n of child.neighbours) {
      const peer = this.byName.get(n)!;
      void peer.instance?.control.peerDown(name, final).catch(() => {});
    }
  }

  private finish(result: SupervisorResult): void {
    this.stopping = true;
    this.log.info(result, 'supervisor stopped');
    this.resolveDone(result);
  }
}

function neighboursOf(name: string, topology: ReadonlyArray<readonly [string, string]>): string[] {
  const out = new Set<string>();
  for (const [a, b] of topology) {
    if (a === name) out.add(b);
    if (b === name) out.add(a);
  }
  return [...out];
}

function exitInfo(instance: Instance, code: number): ExitInfo {
  const reason =
    instance.killReason ??
    (instance.expectedExit ? 'stopped' : null) ??
    (instance.error
      ? `${(instance.error as { code?: string }).code ?? 'error'}: ${instance.error.message}`
      : null) ??
    `exit(${code})`;
  const abnormal =
    !instance.expectedExit &&
    (code !== 0 || instance.error !== null || instance.killReason !== null);
  return { code, reason, abnormal, at: Date.now() };
}
