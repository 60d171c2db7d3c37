/**
 * The receiving half of an actor: trust, the bounded mailbox, handler runs
 * and the counters an operator reads.
 *
 * Order of checks for each incoming tell/ask (cheapest and safest first):
 *  1. the envelope's `from` must be the sender the channel proves — a
 *     mismatch is a forgery and is refused as ERR_UNTRUSTED;
 *  2. an action with no handler is ERR_UNKNOWN_ACTION;
 *  3. a sender that is not an authority for the action is ERR_UNTRUSTED
 *     (default deny: an action declares its authorities or nobody may send it);
 *  4. a stopping actor refuses with ERR_STOPPING;
 *  5. past the high-water mark, ERR_MAILBOX_FULL;
 *  6. the request is checked as its action declares (runtime/protocol/):
 *     a bad one is ERR_BAD_REQUEST naming the field, and the handler never
 *     runs; the handler receives the parsed value.
 * Refused tells cannot be answered; they count as rejected and dead letters.
 *
 * Handlers run `concurrency` at a time (default 1: one message at a time,
 * like a gen_server). An actor that batches (the journal's group commit)
 * raises it so that many handlers can await the same commit.
 */
import {
  E,
  MeshError,
  handlerFailed,
  mailboxFull,
  stopping,
  toPayload,
  unknownAction,
  untrusted,
} from './errors.js';
import type { Endpoint } from './endpoint.js';
import { LatencyHistogram } from './metrics.js';
import { checkRequest } from './protocol/define.js';
import type { RequestCheck } from './protocol/define.js';
import { ASK, OBSERVER_TAGS } from './types.js';
import type { Envelope, ErrorPayload, TraceRecord } from './types.js';

/** Handler errors kept for the inspector: enough to see a pattern, bounded per actor. */
const RECENT_ERRORS = 8;

export type Handler = (data: unknown, env: Envelope) => unknown;

interface Route {
  handler: Handler;
  authorities: ReadonlySet<string>;
  /**
   * How the request is checked on arrival, when the dispatcher checks it
   * (`schema`, `none`); undefined when the handler takes what came (no
   * declaration, `trusted`, `handlerChecked`).
   */
  check: RequestCheck<unknown> | undefined;
  /** `actor.action`, for the messages of refused requests. */
  label: string;
}

export interface DispatcherOptions {
  name: string;
  highWater: number;
  concurrency: number;
}

export class Dispatcher {
  received = 0;
  handled = 0;
  /** Messages handled for an observer (OBSERVER_TAG): not in `handled`, latency or traces. */
  observed = 0;
  rejected = 0;
  /** Refused tells: there was nobody to tell, so they are counted here. */
  droppedTells = 0;
  lastError: ErrorPayload | undefined;
  /** The last RECENT_ERRORS handler errors, oldest first (the console's inspect view shows them). */
  readonly recentErrors: Array<ErrorPayload & { at: number; action: string }> = [];
  readonly latency = new LatencyHistogram();
  /** Called with errors of handlers for tells (nobody else hears of them). */
  onTellError: (action: string, err: unknown) => void = () => {};

  private readonly routes = new Map<string, Route>();
  private readonly queue: Array<{ env: Envelope; sender: string; route: Route }> = [];
  private running = 0;
  /** Set while an operator traces this actor: called once per message, after it is handled or refused. */
  tracer: ((rec: TraceRecord) => void) | null = null;
  /**
   * Set while the actor logs at debug or trace (worker-main.ts keeps it in
   * step with the level): the same record as the tracer's. Unset, a message
   * costs no record at all.
   */
  observer: ((rec: TraceRecord) => void) | null = null;
  private accepting = true;
  /** Messages that arrive before init finished wait in the mailbox (OTP: init before the first message). */
  private held = true;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly endpoint: Endpoint,
    private readonly options: DispatcherOptions,
  ) {
    endpoint.onRequest = (env, sender) => this.receive(env, sender);
  }

  /** Declare a handler, who may send it, and how its request is checked on arrival. */
  on(
    action: string,
    authorities: readonly string[],
    handler: Handler,
    check?: RequestCheck<unknown>,
  ): void {
    if (this.routes.has(action)) throw new TypeError(`action ${action} is already handled`);
    const label = `${this.options.name}.${action}`;
    const checked = check?.kind === 'schema' || check?.kind === 'none' ? check : undefined;
    this.routes.set(action, { handler, authorities: new Set(authorities), check: checked, label });
  }

  /** Init is done: start running handlers, beginning with what queued meanwhile. */
  open(): void {
    this.held = false;
    this.pump();
  }

  get depth(): number {
    return this.queue.length + this.running;
  }

  get inFlight(): number {
    return this.running;
  }

  describeRoutes(): Array<{ action: string; authorities: string[] }> {
    return [...this.routes].map(([action, r]) => ({ action, authorities: [...r.authorities] }));
  }

  /** Refuse new work from now on; resolves once queued and running work is done. */
  drain(): Promise<void> {
    this.accepting = false;
    if (this.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private receive(env: Envelope, sender: string): void {
    this.received++;
    const name = this.options.name;
    const route = this.routes.get(env.action);
    if (env.from !== sender) return this.refuse(env, sender, untrusted(env.from, name, env.action));
    if (!route) return this.refuse(env, sender, unknownAction(name, env.action));
    if (!route.authorities.has(sender))
      return this.refuse(env, sender, untrusted(sender, name, env.action));
    if (!this.accepting) return this.refuse(env, sender, stopping(name));
    if (this.depth >= this.options.highWater) {
      return this.refuse(env, sender, mailboxFull(name, this.options.highWater));
    }
    if (route.check) {
      try {
        env.data = checkRequest(route.check, env.data, route.label);
      } catch (err) {
        return this.refuse(
          env,
          sender,
          err instanceof MeshError ? err : E.ERR_BAD_REQUEST(route.label),
        );
      }
    }
    if (!this.held && this.running < this.options.concurrency && this.queue.length === 0) {
      this.run(env, sender, route);
    } else {
      this.queue.push({ env, sender, route });
    }
  }

  /** Tell the tracer and the observer, if any, how one message ended (no record is built otherwise). */
  private notify(env: Envelope, sender: string, us: number, err: unknown, failed: boolean): void {
    if (!this.tracer && !this.observer) return;
    const rec: TraceRecord = {
      at: Date.now(),
      from: sender,
      action: env.action,
      kind: env.k === ASK ? 'ask' : 'tell',
      us: Math.round(us),
      outcome: failed ? ((err as { code?: string } | undefined)?.code ?? 'ERR_HANDLER') : 'ok',
    };
    this.tracer?.(rec);
    this.observer?.(rec);
  }

  private refuse(env: Envelope, sender: string, err: unknown): void {
    this.rejected++;
    if (!isObserver(env)) this.notify(env, sender, 0, err, true);
    if (env.k === ASK) this.endpoint.replyError(env, sender, err);
    else this.droppedTells++;
  }

  private run(env: Envelope, sender: string, route: Route): void {
    this.running++;
    const started = performance.now();
    let result: unknown;
    try {
      result = route.handler(env.data, env);
    } catch (err) {
      this.finish(env, sender, started, undefined, err, true);
      return;
    }
    if (isThenable(result)) {
      result.then(
        (value) => this.finish(env, sender, started, value, undefined, false),
        (err: unknown) => this.finish(env, sender, started, undefined, err, true),
      );
    } else {
      this.finish(env, sender, started, result, undefined, false);
    }
  }

  private finish(
    env: Envelope,
    sender: string,
    started: number,
    value: unknown,
    err: unknown,
    failed: boolean,
  ): void {
    this.running--;
    // An observer's poll (the console's) is not the actor's work: counted
    // apart, so msgs/s, the latency histogram and a trace show the node's
    // own traffic and not the console watching it.
    if (isObserver(env)) {
      this.observed++;
    } else {
      this.handled++;
      const us = (performance.now() - started) * 1000;
      this.latency.record(us);
      this.notify(env, sender, us, err, failed);
    }
    if (failed) {
      // Non-coded errors keep their message but not their stack: host
      // details stay on this thread (and in its log).
      const coded =
        err instanceof MeshError
          ? err
          : handlerFailed(this.options.name, env.action, toPayload(err).message);
      this.lastError = toPayload(coded);
      this.recentErrors.push({ at: Date.now(), action: env.action, ...this.lastError });
      if (this.recentErrors.length > RECENT_ERRORS) this.recentErrors.shift();
      if (env.k === ASK) this.endpoint.replyError(env, sender, coded);
      else this.onTellError(env.action, err);
    } else if (env.k === ASK) {
      this.endpoint.reply(env, sender, value);
    }
    this.pump();
  }

  private pump(): void {
    while (!this.held && this.running < this.options.concurrency && this.queue.length > 0) {
      const next = this.queue.shift()!;
      this.run(next.env, next.sender, next.route);
    }
    if (this.depth === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}

function isObserver(env: Envelope): boolean {
  return env.tags?.observer === OBSERVER_TAGS.observer;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'
  );
}
