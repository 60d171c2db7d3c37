/**
 * The base class of every actor. An actor module's default export extends
 * it; the worker bootstrap (worker-main.ts) constructs it with a context and
 * drives its lifecycle: constructor (declare handlers) → init() → serve →
 * stop().
 *
 * Handlers are declared with the senders that are authorities for them:
 *
 *   this.on('append', ['grants', 'admin'], (data) => this.grantsOnAppend(data));
 *
 * Anyone else gets ERR_UNTRUSTED and the handler never runs (default deny).
 */
import type { Dispatcher, Handler } from './dispatcher.js';
import type { AskOptions, Endpoint } from './endpoint.js';
import type { Logger } from './log.js';
import type { MetricsRegistry } from './metrics.js';

export interface ActorContext {
  name: string;
  options: Record<string, unknown>;
  endpoint: Endpoint;
  dispatcher: Dispatcher;
  log: Logger;
  metrics: MetricsRegistry;
  /** End this actor normally (exit code 0): a transient child is not restarted. */
  exit: () => void;
}

export abstract class Actor {
  readonly name: string;
  readonly options: Record<string, unknown>;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  private readonly endpoint: Endpoint;
  private readonly dispatcher: Dispatcher;
  private readonly exitNormally: () => void;

  constructor(ctx: ActorContext) {
    this.name = ctx.name;
    this.options = ctx.options;
    this.log = ctx.log;
    this.metrics = ctx.metrics;
    this.endpoint = ctx.endpoint;
    this.dispatcher = ctx.dispatcher;
    this.exitNormally = ctx.exit;
  }

  /** Set up resources. The supervisor starts the next child only once this resolves. */
  async init(): Promise<void> {}

  /** Release resources. Runs after the mailbox drained (or the stop deadline passed). */
  async stop(): Promise<void> {}

  /** The actor's own state, for the inspector. Plain data. */
  inspectState(): unknown {
    return undefined;
  }

  protected on(action: string, authorities: readonly string[], handler: Handler): void {
    this.dispatcher.on(action, authorities, handler);
  }

  protected ask(
    to: string,
    action: string,
    data?: unknown,
    options?: AskOptions,
  ): Promise<unknown> {
    return this.endpoint.ask(to, action, data, options);
  }

  protected tell(
    to: string,
    action: string,
    data?: unknown,
    tags?: Record<string, string>,
  ): boolean {
    return this.endpoint.tell(to, action, data, tags);
  }

  /** Finish normally: the worker exits with code 0. */
  protected exit(): void {
    this.exitNormally();
  }
}

/** What an actor module must default-export. */
export type ActorClass = new (ctx: ActorContext) => Actor;
